#!/usr/bin/python3
"""A real RTSP camera for the tests: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0)
serving a live H.264 test pattern at rtsp://127.0.0.1:PORT/cam1, with Digest authentication
when a user is given. Prints "ready" once listening; runs until killed.

SIGUSR1 makes the camera stall the way a hung encoder does: sessions still open and answer,
but no RTP leaves (the payloader's packets are dropped); SIGUSR2 lets frames flow again.

usage: rtsp_camera.py PORT WIDTH HEIGHT FPS [USER PASSWORD]
env: CAMERA_PATTERN (videotestsrc pattern, default "ball"; "snow" keeps the encoder at its
     bitrate like a busy street), CAMERA_KBIT (x264's target bitrate, default 2048)
"""
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

from gst_rtsp_auth import require_digest  # noqa: E402

Gst.init(None)
port, width, height, fps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
user = sys.argv[5] if len(sys.argv) > 6 else None
password = sys.argv[6] if len(sys.argv) > 6 else None

server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
pattern = os.environ.get("CAMERA_PATTERN", "ball")
kbit = int(os.environ.get("CAMERA_KBIT", "2048"))
factory.set_launch(
    f"( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={width},height={height},framerate={fps}/1 "
    f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps * 2} bitrate={kbit} "
    f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(True)

stalled = False


def on_configure(_factory, media):
    # A media prepared while stalled still needs its first packets to come up (the server
    # waits for them before answering DESCRIBE and PLAY): it sends for half a second, then
    # nothing more, like an encoder that hangs just after a client connects.
    born = GLib.get_monotonic_time()

    def drop_while_stalled(_pad, _info):
        young = GLib.get_monotonic_time() - born < 500_000
        return Gst.PadProbeReturn.DROP if stalled and not young else Gst.PadProbeReturn.OK

    pay = media.get_element().get_by_name("pay0")
    pay.get_static_pad("src").add_probe(
        Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, drop_while_stalled
    )


def set_stalled(value):
    global stalled
    stalled = value
    print("stalled" if value else "flowing", file=sys.stderr, flush=True)
    return GLib.SOURCE_CONTINUE


factory.connect("media-configure", on_configure)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, set_stalled, True)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, set_stalled, False)
if user:
    auth = GstRtspServer.RTSPAuth()
    require_digest(auth, factory, user, password)
    server.set_auth(auth)
server.get_mount_points().add_factory("/cam1", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("ready", flush=True)
GLib.MainLoop().run()
