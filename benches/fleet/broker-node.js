// One node of the fleet harness's clustered MQTT broker: Aedes (npm `aedes@0`) sharing its
// subscriptions, retained messages and persistent sessions with the other nodes through Redis
// (`aedes-persistence-redis`) and forwarding publishes between nodes through Redis pub/sub
// (`mqemitter-redis`). Several of these on different ports, on one Redis db, are one broker.
//
//   node broker-node.js PORT REDIS_DB
//
// Prints `listening PORT` once it accepts, then one JSON line per second:
// {"t": unix ms, "clients": connected now, "connects": accepted in that second, "publishes": in
// that second}. Binds 127.0.0.1 only.
'use strict'
const net = require('net')
const path = require('path')
const modules = process.env.FLEET_BROKER_MODULES || path.join(__dirname, 'node_modules')
const need = (m) => require(path.resolve(modules, m))

const [port, db] = [Number(process.argv[2]), Number(process.argv[3] || 0)]
const redis = { host: '127.0.0.1', port: 6379, db }
const aedes = need('aedes')({
  mq: need('mqemitter-redis')(redis),
  persistence: need('aedes-persistence-redis')(redis),
  // Room for a fleet's reconnect storm: the default 1000 offline messages per session would cut
  // a station's queued commands; stations never have that many.
  concurrency: 1000
})

let connects = 0
let publishes = 0
aedes.on('client', () => { connects++ })
aedes.on('publish', (packet, client) => { if (client) publishes++ })

const server = net.createServer(aedes.handle)
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${port}`)
  setInterval(() => {
    console.log(JSON.stringify({ t: Date.now(), clients: aedes.connectedClients, connects, publishes }))
    connects = 0
    publishes = 0
  }, 1000)
})
const stop = () => { server.close(); aedes.close(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
