#!/usr/bin/python3
"""The application the streaming-session end-to-end test runs on the virtual display.

Usage: colour_app.py [COLOUR [READY_FILE]]

Fills the whole screen with one distinctive colour (default #ff00aa) so that the browser side can check which pixels
it received, and keeps a narrow white bar sweeping across it about 30 times a second so that there is a continuous
stream of screen updates whose rate can be measured. Once its window is visible and painted it creates READY_FILE, if
given, so that a test measures the stream and not the app's start-up. Runs until it is terminated.
"""

import pathlib
import sys
import tkinter

COLOUR = sys.argv[1] if len(sys.argv) > 1 else "#ff00aa"
READY_FILE = sys.argv[2] if len(sys.argv) > 2 else None
BAR_WIDTH = 24
STEP = 8
PERIOD_MS = 33

root = tkinter.Tk()
width, height = root.winfo_screenwidth(), root.winfo_screenheight()
root.geometry(f"{width}x{height}+0+0")
root.attributes("-fullscreen", True)
canvas = tkinter.Canvas(root, width=width, height=height, background=COLOUR, highlightthickness=0, borderwidth=0)
canvas.pack(fill="both", expand=True)
bar = canvas.create_rectangle(0, 0, BAR_WIDTH, height, fill="white", width=0)


def sweep(x: int = 0) -> None:
    """Moves the bar one step to the right, wrapping at the screen's edge."""
    x = (x + STEP) % width
    canvas.coords(bar, x, 0, x + BAR_WIDTH, height)
    root.after(PERIOD_MS, sweep, x)


def log(message: str) -> None:
    print(f"colour_app: {message}", file=sys.stderr, flush=True)


def signal_when_viewable(waited_ms: int = 0) -> None:
    """Polls until the canvas is viewable (mapped, as are its ancestors), then paints and creates READY_FILE.

    Polling the window's state, rather than waiting for a VisibilityNotify event, cannot miss an event the window
    manager's reparenting swallowed; every 5 s without success it says where it stands.
    """
    if canvas.winfo_viewable():
        root.update_idletasks()
        log(f"window viewable and painted after {waited_ms} ms")
        if READY_FILE:
            pathlib.Path(READY_FILE).touch()
        root.after(PERIOD_MS, sweep)
        return
    if waited_ms and waited_ms % 5000 == 0:
        log(f"window not viewable yet after {waited_ms} ms (state {root.state()}, mapped {root.winfo_ismapped()})")
    root.after(50, signal_when_viewable, waited_ms + 50)


log(f"started on {root.winfo_screen()} ({width}x{height})")
root.after_idle(signal_when_viewable)
root.mainloop()
