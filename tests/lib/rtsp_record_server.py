#!/usr/bin/python3
"""Central's media server for the tests: GStreamer's RTSP server in RECORD mode at
rtsp://127.0.0.1:PORT/live/cam, taking an H.264 stream from a publisher (ANNOUNCE, SETUP
mode=record, RECORD) and writing it, without decoding, into OUTFILE as MPEG-TS. With a user,
the publisher must answer a Digest challenge. Prints "ready" once listening; runs until killed.

usage: rtsp_record_server.py PORT OUTFILE [USER PASSWORD]
env: RTSPS_CERT, RTSPS_KEY (PEM files): serve rtsps:// (RTSP over TLS) with that certificate.
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

from gst_rtsp_auth import require_digest  # noqa: E402

Gst.init(None)
port, outfile = sys.argv[1], sys.argv[2]
user = sys.argv[3] if len(sys.argv) > 4 else None
password = sys.argv[4] if len(sys.argv) > 4 else None

server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
factory.set_launch(
    f"( rtph264depay name=depay0 ! h264parse ! mpegtsmux ! filesink location={outfile} sync=false )"
)
factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
auth = None
if user or os.environ.get("RTSPS_CERT"):
    auth = GstRtspServer.RTSPAuth()
if os.environ.get("RTSPS_CERT"):
    auth.set_tls_certificate(
        Gio.TlsCertificate.new_from_files(os.environ["RTSPS_CERT"], os.environ["RTSPS_KEY"])
    )
if user:
    require_digest(auth, factory, user, password)
if auth:
    server.set_auth(auth)
server.get_mount_points().add_factory("/live/cam", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("ready", flush=True)
GLib.MainLoop().run()
