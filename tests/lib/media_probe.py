#!/usr/bin/python3
"""Decodes a recorded MPEG-TS file with GStreamer (tsdemux, h264parse, openh264dec) and prints
what a viewer would get, as JSON: codec, width, height, frames decoded, and the span of their
timestamps in seconds. An independent check of what the relay delivered: nothing of the
daemon's code reads the file.

usage: media_probe.py FILE
"""
import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
pipeline = Gst.parse_launch(
    f"filesrc location={sys.argv[1]} ! tsdemux ! h264parse name=parse ! openh264dec "
    "! fakesink name=sink signal-handoffs=true sync=false"
)
out = {"codec": None, "width": None, "height": None, "frames": 0, "duration_s": 0.0}
stamps = []


def on_handoff(_sink, buf, _pad):
    out["frames"] += 1
    if buf.pts != Gst.CLOCK_TIME_NONE:
        stamps.append(buf.pts)


pipeline.get_by_name("sink").connect("handoff", on_handoff)
pipeline.set_state(Gst.State.PLAYING)
msg = pipeline.get_bus().timed_pop_filtered(
    60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
)
caps = pipeline.get_by_name("parse").get_static_pad("src").get_current_caps()
if caps:
    s = caps.get_structure(0)
    out["codec"] = s.get_name()
    out["width"] = s.get_value("width")
    out["height"] = s.get_value("height")
if msg and msg.type == Gst.MessageType.ERROR:
    out["error"] = msg.parse_error()[0].message
if len(stamps) >= 2:
    out["duration_s"] = round((max(stamps) - min(stamps)) / Gst.SECOND, 3)
pipeline.set_state(Gst.State.NULL)
print(json.dumps(out))
