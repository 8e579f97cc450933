//! Commands from central dispatch: the core that takes each message from `P/cmd/{name}`,
//! checks it, runs it at most once, and answers it exactly once on
//! `P/cmd-result/{request_id}` through the outbox (docs/CONTRACT.md, "Commands").
//!
//! For every message, in this order:
//! 1. **Rate limit** per command name (`max_per_minute`, a sliding minute). Beyond it a message
//!    is dropped before any work — not parsed, verified or answered — counted
//!    (`cmd.rate_limited`) and logged every 10 s: a flood costs neither CPU nor outbox.
//! 2. **Parse** (`stationd_proto::command`). Without a readable `request_id` nothing can be
//!    answered: counted and logged.
//! 3. **Authenticate** (signature, or the station's consent to unsigned commands). A refusal
//!    here is answered but not kept: a stranger must not be able to take a `request_id` before
//!    dispatch uses it.
//! 4. **Repeated `request_id`**: answered again from `commands.db`, not run again. One left
//!    "running" by a daemon that stopped is answered `failed` and not run again (at most once).
//! 5. **Times** (`expired`, too far ahead), **unknown name**: answered and kept.
//! 6. **Run**: recorded as running (committed), then the message is acknowledged to the broker,
//!    then the handler runs in its own task; its answer is kept and published.
//!
//! The message is acknowledged to the broker (manual acks in the uplink) only once what it
//! caused is safe: its answer committed to the outbox, or its run recorded. A daemon killed
//! before that gets it again from the broker's session.

pub mod handlers;
mod limiter;
pub mod store;

use crate::command::{self, Answer, Command, Malformed, Policy, Refusal, Status};
use crate::config::Commands;
use crate::event::{ClockQuality, Event, Priority};
use crate::metrics::{self, Metrics};
use crate::outbox::{Committed, EventSink};
use handlers::{CommandContext, Outcome, Registry};
use limiter::RateLimiter;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use store::{AnswerStore, Recorded};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Device id of the answers (the envelope's `device`).
pub const DEVICE: &str = "commands";
/// Kind of the answers.
pub const ANSWER_KIND: &str = "cmd.result";
/// Messages waiting for the core; beyond it the uplink drops them (`cmd.dropped_busy`).
pub const QUEUE: usize = 1024;

/// Acknowledges one message to the broker (given by the uplink, called by the core).
pub type Ack = Box<dyn FnOnce() + Send>;

/// A message waiting for its answer's commit before it is acknowledged.
type PendingAck = (Committed, Ack);

/// A command message as it arrived from the broker.
pub struct Incoming {
    /// The topic's last level.
    pub name: String,
    pub payload: Vec<u8>,
    /// Acknowledges the message to the broker; called once what it caused is safe.
    pub ack: Ack,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("name", &self.name)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

pub struct CommandCore {
    station: String,
    policy: Policy,
    settings: Commands,
    store: Arc<Mutex<AnswerStore>>,
    sink: EventSink,
    /// Shared with the drivers: a device a reload adds brings its driver's commands.
    registry: Arc<std::sync::Mutex<Registry>>,
    ctx: Arc<CommandContext>,
    metrics: Arc<Metrics>,
    limiter: RateLimiter,
    /// Request ids whose handler runs now, in this process.
    running: Arc<Mutex<HashSet<String>>>,
    /// Messages to acknowledge once their answer is committed (`acknowledge`).
    acker: mpsc::Sender<PendingAck>,
    acker_rx: Option<mpsc::Receiver<PendingAck>>,
    /// Messages shed by the rate limit since the last log line, and when that was (mono ms).
    shed: u64,
    shed_logged: Option<u64>,
    /// The counters every message touches, fetched once (the rest are per outcome).
    received: metrics::Counter,
    rate_limited: metrics::Counter,
}

/// Why the core could not go on with a message.
#[derive(Debug, thiserror::Error)]
enum CoreError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("the outbox writer has stopped")]
    Outbox,
}

impl CommandCore {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        station: &str,
        settings: Commands,
        store: AnswerStore,
        sink: EventSink,
        registry: Arc<std::sync::Mutex<Registry>>,
        ctx: CommandContext,
        metrics: Arc<Metrics>,
    ) -> CommandCore {
        let (acker, acker_rx) = mpsc::channel(QUEUE);
        CommandCore {
            acker,
            acker_rx: Some(acker_rx),
            shed: 0,
            shed_logged: None,
            received: metrics.counter("cmd.received", ""),
            rate_limited: metrics.counter("cmd.rate_limited", ""),
            station: station.to_string(),
            policy: settings.policy(),
            limiter: RateLimiter::new(settings.max_per_minute),
            settings,
            store: Arc::new(Mutex::new(store)),
            sink,
            registry,
            ctx: Arc::new(ctx),
            metrics,
            running: Default::default(),
        }
    }

    /// Takes messages until shutdown or until the uplink hangs up.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Incoming>, shutdown: CancellationToken) {
        let acks = tokio::spawn(acknowledge(
            self.acker_rx.take().expect("run is called once"),
        ));
        let _stop_acks = AbortOnDrop(acks);
        let (now, days, keep) = (
            crate::clock::unix_ms(),
            self.settings.keep_answers_days,
            self.settings.keep_answers,
        );
        if let Err(e) = self.with_store(move |s| s.prune(now, days, keep)).await {
            tracing::warn!(event = "cmd.store_failed", error = %e, "cannot prune the kept command answers");
        }
        loop {
            let incoming = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => return },
                _ = shutdown.cancelled() => return,
            };
            metrics::inc(&self.received);
            if let Err(e) = self.take(incoming).await {
                // Not acknowledged: the broker sends it again on the next session.
                metrics::inc(&self.metrics.counter("cmd.store_failures", ""));
                tracing::error!(event = "cmd.store_failed", error = %e, "cannot record a command; it is not acknowledged and will come again");
            }
        }
    }

    async fn take(&mut self, m: Incoming) -> Result<(), CoreError> {
        let Incoming { name, payload, ack } = m;
        let mono = crate::clock::mono_ms();
        if !self.limiter.allow(&name, mono) {
            // Shed before any work: not parsed, not verified, not answered. Answering a flood
            // would fill the outbox with refusals, and verifying it would take the CPU.
            metrics::inc(&self.rate_limited);
            self.shed += 1;
            if self
                .shed_logged
                .is_none_or(|t| mono.saturating_sub(t) >= 10_000)
            {
                tracing::warn!(event = "cmd.rate_limited", command = %name, dropped = self.shed, limit_per_minute = self.settings.max_per_minute, "more commands than [commands] max_per_minute: dropped without an answer");
                self.shed = 0;
                self.shed_logged = Some(mono);
            }
            ack();
            return Ok(());
        }
        let (now_ms, clock) = crate::clock::now();
        let synced = clock == ClockQuality::Synced;
        let cmd = match command::parse(&name, &payload) {
            Ok(cmd) => cmd,
            Err(Malformed { request_id, reason }) => {
                metrics::inc(&self.metrics.counter("cmd.malformed", ""));
                tracing::warn!(event = "cmd.malformed", command = %name, request_id = request_id.as_deref().unwrap_or("(unreadable)"), error = %reason, "a command message that is not valid");
                return match request_id {
                    Some(id) => {
                        let answer = make_answer(
                            &id,
                            &name,
                            Status::Refused,
                            Some(reason),
                            None,
                            None,
                            clock,
                        );
                        self.reply(answer, false, now_ms, ack).await
                    }
                    // Nobody to answer: counted and logged only.
                    None => {
                        ack();
                        Ok(())
                    }
                };
            }
        };
        if let Err(Refusal::Unauthenticated(reason)) =
            command::authenticate(&cmd, &self.station, &self.policy)
        {
            metrics::inc(&self.metrics.counter("cmd.unauthenticated", ""));
            tracing::warn!(event = "cmd.unauthenticated", command = %cmd.name, request_id = %cmd.request_id, error = %reason, "refused a command");
            let answer = make_answer(
                &cmd.request_id,
                &cmd.name,
                Status::Refused,
                Some(reason),
                None,
                None,
                clock,
            );
            return self.reply(answer, false, now_ms, ack).await;
        }
        // From dispatch, from here on.
        let id = cmd.request_id.clone();
        let recorded = self.with_store(move |s| s.lookup(&id)).await?;
        match recorded {
            Some(Recorded::Answered(answer)) => {
                metrics::inc(&self.metrics.counter("cmd.repeated", ""));
                tracing::info!(event = "cmd.repeated", command = %cmd.name, request_id = %cmd.request_id, "a repeated request_id: answered again, not run again");
                return self.reply(answer, false, now_ms, ack).await;
            }
            Some(Recorded::Running) if self.is_running(&cmd.request_id) => {
                // Its answer comes when it ends.
                metrics::inc(&self.metrics.counter("cmd.repeated", ""));
                ack();
                return Ok(());
            }
            Some(Recorded::Running) => {
                let answer = make_answer(&cmd.request_id, &cmd.name, Status::Failed, Some("the station stopped while this command ran: it may or may not have taken effect, and is not run again".into()), None, None, clock);
                return self.reply(answer, true, now_ms, ack).await;
            }
            None => {}
        }
        let refusal = match command::check_times(&cmd, &self.policy, now_ms, synced) {
            Ok(()) => None,
            Err(Refusal::Expired(reason)) => Some((Status::Expired, reason)),
            Err(Refusal::Refused(reason) | Refusal::Unauthenticated(reason)) => {
                Some((Status::Refused, reason))
            }
        };
        let registry = || self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let handler = registry().get(&cmd.name);
        let refusal = refusal.or_else(|| {
            handler.is_none().then(|| {
                (
                    Status::UnknownCommand,
                    format!(
                        "this station has no command {:?}; it has: {}",
                        cmd.name,
                        registry().names().join(", ")
                    ),
                )
            })
        });
        if let Some((status, reason)) = refusal {
            metrics::inc(&self.metrics.counter("cmd.refused", ""));
            tracing::info!(event = "cmd.refused", command = %cmd.name, request_id = %cmd.request_id, status = status.as_str(), reason = %reason, "a command was not run");
            let answer = make_answer(
                &cmd.request_id,
                &cmd.name,
                status,
                Some(reason),
                None,
                None,
                clock,
            );
            return self.reply(answer, true, now_ms, ack).await;
        }
        let handler = handler.expect("checked above");
        let id = cmd.request_id.clone();
        self.with_store(move |s| s.begin(&id, now_ms)).await?;
        ack();
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cmd.request_id.clone());
        metrics::inc(&self.metrics.counter("cmd.executed", ""));
        tracing::info!(event = "cmd.started", command = %cmd.name, request_id = %cmd.request_id, "running a command from dispatch");
        let task = Execution {
            store: self.store.clone(),
            sink: self.sink.clone(),
            ctx: self.ctx.clone(),
            running: self.running.clone(),
            metrics: self.metrics.clone(),
        };
        tokio::spawn(task.run(handler, cmd, now_ms, clock));
        Ok(())
    }

    /// Runs `op` on the answer store on the blocking pool (its writes are fsynced).
    async fn with_store<T: Send + 'static>(
        &self,
        op: impl FnOnce(&AnswerStore) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || op(&store.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .expect("answer store task")
            .map_err(CoreError::from)
    }

    /// Answers (keeping the answer when `keep`), and acknowledges the message to the broker
    /// once the answer is committed to the outbox. The core does not wait for the commit: the
    /// next messages' answers join the same group commit.
    async fn reply(
        &self,
        answer: Answer,
        keep: bool,
        now_ms: i64,
        ack: Ack,
    ) -> Result<(), CoreError> {
        if keep {
            let kept = answer.clone();
            self.with_store(move |s| s.answer(&kept, now_ms)).await?;
        }
        let receipt = queue_answer(&self.sink, &self.metrics, answer).await?;
        self.acker
            .send((receipt, ack))
            .await
            .map_err(|_| CoreError::Outbox)
    }

    fn is_running(&self, request_id: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(request_id)
    }
}

/// One command's run, in its own task: the core goes on taking messages meanwhile.
struct Execution {
    store: Arc<Mutex<AnswerStore>>,
    sink: EventSink,
    ctx: Arc<CommandContext>,
    running: Arc<Mutex<HashSet<String>>>,
    metrics: Arc<Metrics>,
}

impl Execution {
    async fn run(
        self,
        handler: Arc<dyn handlers::Handler>,
        cmd: Command,
        now_ms: i64,
        clock: ClockQuality,
    ) {
        let started = crate::event::format_ts_ms(crate::clock::unix_ms());
        let outcome = handler.run(&cmd.args, &self.ctx).await;
        let (status, reason, result) = match outcome {
            Outcome::Done(result) => (Status::Done, None, Some(result)),
            Outcome::Failed { reason, result } => (Status::Failed, Some(reason), result),
            Outcome::BadArgs(reason) => (Status::Refused, Some(reason), None),
        };
        tracing::info!(event = "cmd.finished", command = %cmd.name, request_id = %cmd.request_id, status = status.as_str(), "a command from dispatch ended");
        let answer = make_answer(
            &cmd.request_id,
            &cmd.name,
            status,
            reason,
            result,
            Some(started),
            clock,
        );
        let (store, kept) = (self.store.clone(), answer.clone());
        let kept = tokio::task::spawn_blocking(move || {
            store
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .answer(&kept, now_ms)
        })
        .await
        .expect("answer store task");
        if let Err(e) = kept {
            tracing::error!(event = "cmd.store_failed", error = %e, request_id = %cmd.request_id, "cannot keep a command's answer; a repeat would be answered as interrupted");
        }
        if let Err(e) = queue_answer(&self.sink, &self.metrics, answer).await {
            tracing::error!(event = "cmd.answer_lost", error = %e, request_id = %cmd.request_id, "cannot queue a command's answer");
        }
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&cmd.request_id);
    }
}

fn make_answer(
    request_id: &str,
    command: &str,
    status: Status,
    reason: Option<String>,
    result: Option<serde_json::Value>,
    started_ts: Option<String>,
    clock: ClockQuality,
) -> Answer {
    Answer {
        request_id: request_id.to_string(),
        command: command.to_string(),
        status,
        reason,
        result,
        started_ts,
        finished_ts: crate::event::format_ts_ms(crate::clock::unix_ms()),
        clock: clock.as_str().to_string(),
    }
}

/// Queues the answer in the outbox; the receipt resolves once it is committed.
async fn queue_answer(
    sink: &EventSink,
    metrics: &Metrics,
    answer: Answer,
) -> Result<Committed, CoreError> {
    let mut ev = Event::new(
        DEVICE,
        ANSWER_KIND,
        Priority::Event,
        crate::clock::now(),
        false,
        serde_json::to_value(&answer).expect("an answer serialises"),
    );
    ev.topic = Some(format!("cmd-result/{}", answer.request_id));
    metrics::inc(&metrics.counter("cmd.answered", ""));
    metrics::inc(&metrics.counter(&format!("cmd.answered_{}", answer.status.as_str()), ""));
    sink.send_durable(ev).await.map_err(|_| CoreError::Outbox)
}

/// Acknowledges messages to the broker as their answers commit, in order (commits happen in
/// queue order, so waiting for each receipt in turn never waits longer than needed).
async fn acknowledge(mut rx: mpsc::Receiver<PendingAck>) {
    while let Some((receipt, ack)) = rx.recv().await {
        // Not committed (the writer stopped): not acknowledged, the broker sends it again.
        if receipt.wait().await.is_ok() {
            ack();
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
