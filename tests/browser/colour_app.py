#!/usr/bin/python3
"""The application the streaming-session tests run on the virtual display.

Usage: colour_app.py [COLOUR [READY_FILE [MAP_DELAY_SECONDS]]]

Fills the whole screen with one distinctive colour (default #ff00aa) so that the viewer's side can check which pixels
it received, and keeps a narrow white bar sweeping across it about 60 times a second so that there is a continuous
stream of screen updates whose rate can be measured. Once its window is visible and painted it creates READY_FILE, if
given, so that a test measures the stream and not the app's start-up. MAP_DELAY_SECONDS (default 0) keeps the window
unmapped that long first, for a test of the session's readiness; READY_FILE.mapping is created just before the window
is asked to map, so that the test knows the earliest moment it can be viewable (the app sees it viewable a poll later,
possibly after the session did). Runs until it is terminated.

Input, each event logged to stderr with the colour it leads to:
  - keys: "1" paints COLOUR, "2" paints KEY_COLOUR (#00c0ff);
  - gamepad: a press of any button of the first joystick, /dev/input/js0, paints GAMEPAD_COLOUR (#20e020).

Sound: when PULSE_SERVER is set, a continuous 440 Hz sine tone (48 kHz, 16-bit, mono) is played through a `pacat`
child (PulseAudio's client tool) whose standard input a thread keeps fed.

Gamepad: read as a game reads it, from the joystick device /dev/input/js0 (Linux's joystick API, linux/joystick.h):
opened read-only, named by the ioctls JSIOCGNAME, JSIOCGBUTTONS and JSIOCGAXES, then read as `struct js_event` records
of 8 bytes (u32 time in ms, s16 value, u8 type, u8 number), first the current state with JS_EVENT_INIT (0x80) set in
type, then each change: type 1 is a button (value 1 pressed, 0 released), type 2 an axis. In a Selkies session the
device is Selkies' first virtual gamepad: the entrypoint preloads Selkies' joystick interposer, which turns the open
into a connection to $SELKIES_JS_SOCKET_PATH/selkies_js0.sock. Until the device can be opened (no gamepad yet, or the
server has no configuration for it) the app tries again every half second; a thread opens and reads it (an open
through the interposer can wait a while) and hands each button press to Tk's event loop.
"""

import fcntl
import math
import os
import pathlib
import queue
import struct
import subprocess
import sys
import threading
import time
import tkinter

COLOUR = sys.argv[1] if len(sys.argv) > 1 else "#ff00aa"
READY_FILE = sys.argv[2] if len(sys.argv) > 2 else None
MAP_DELAY_S = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
KEY_COLOURS = {"1": COLOUR, "2": "#00c0ff"}
GAMEPAD_COLOUR = "#20e020"
BAR_WIDTH = 24
STEP = 8
PERIOD_MS = 16
TONE_HZ = 440
RATE = 48000

JS_DEVICE = "/dev/input/js0"
JS_EVENT = struct.Struct("=IhBB")
# linux/joystick.h: _IOR('j', 0x11, __u8), _IOR('j', 0x12, __u8), _IOC(_IOC_READ, 'j', 0x13, 128).
JSIOCGAXES = 0x80016A11
JSIOCGBUTTONS = 0x80016A12
JSIOCGNAME_128 = 0x80806A13
JS_EVENT_BUTTON = 0x01
JS_EVENT_INIT = 0x80


def log(message: str) -> None:
    print(f"colour_app: {time.monotonic():.3f} {message}", file=sys.stderr, flush=True)


root = tkinter.Tk()
width, height = root.winfo_screenwidth(), root.winfo_screenheight()
root.geometry(f"{width}x{height}+0+0")
root.attributes("-fullscreen", True)
canvas = tkinter.Canvas(root, width=width, height=height, background=COLOUR, highlightthickness=0, borderwidth=0)
canvas.pack(fill="both", expand=True)
bar = canvas.create_rectangle(0, 0, BAR_WIDTH, height, fill="white", width=0)


def paint(colour: str, cause: str) -> None:
    canvas.configure(background=colour)
    log(f"{cause}: colour {colour}")


def sweep(x: int = 0) -> None:
    """Moves the bar one step to the right, wrapping at the screen's edge."""
    x = (x + STEP) % width
    canvas.coords(bar, x, 0, x + BAR_WIDTH, height)
    root.after(PERIOD_MS, sweep, x)


def on_key(event: tkinter.Event) -> None:
    colour = KEY_COLOURS.get(event.keysym)
    if colour:
        paint(colour, f"key {event.keysym}")
    else:
        log(f"key {event.keysym}: no colour")


def play_tone() -> None:
    """Feeds a 440 Hz tone to a pacat child for as long as the app runs (a thread; Tk is not touched)."""
    period = [int(12000 * math.sin(2 * math.pi * TONE_HZ * i / RATE)) for i in range(RATE // 10)]
    chunk = struct.pack(f"<{len(period)}h", *period)  # 100 ms: 44 whole cycles, so the chunks join seamlessly
    command = ["pacat", "--playback", "--format=s16le", f"--rate={RATE}", "--channels=1", "--latency-msec=50",
               "--client-name=colour_app", "--stream-name=tone"]
    try:
        player = subprocess.Popen(command, stdin=subprocess.PIPE)
    except OSError as error:
        log(f"no sound: cannot start pacat: {error}")
        return
    log(f"playing a {TONE_HZ} Hz tone to {os.environ['PULSE_SERVER']}")
    try:
        while True:
            player.stdin.write(chunk)
    except (BrokenPipeError, ValueError):
        log(f"no sound: pacat exited with status {player.wait()}")


class Gamepad:
    """The first joystick, /dev/input/js0, read by a thread; button presses reach Tk through a queue it polls."""

    def __init__(self) -> None:
        self.presses: queue.Queue[int] = queue.Queue()

    def run(self) -> None:
        waiting_logged = False
        while True:
            try:
                fd = os.open(JS_DEVICE, os.O_RDONLY)
            except OSError as error:
                if not waiting_logged:
                    log(f"gamepad: waiting for {JS_DEVICE} ({error.strerror})")
                    waiting_logged = True
                time.sleep(0.5)
                continue
            try:
                self.read(fd)
            finally:
                os.close(fd)
            time.sleep(0.5)

    def read(self, fd: int) -> None:
        """Reads js_event records from the open device until it closes."""
        try:
            name = fcntl.ioctl(fd, JSIOCGNAME_128, bytes(128)).split(b"\0", 1)[0].decode(errors="replace")
            buttons = fcntl.ioctl(fd, JSIOCGBUTTONS, bytes(1))[0]
            axes = fcntl.ioctl(fd, JSIOCGAXES, bytes(1))[0]
        except OSError as error:
            log(f"gamepad: {JS_DEVICE} is not a joystick ({error.strerror})")
            return
        log(f"gamepad: opened {JS_DEVICE}: '{name}', {buttons} buttons, {axes} axes")
        buffer = b""
        while True:
            try:
                data = os.read(fd, JS_EVENT.size * 16)
            except OSError as error:
                log(f"gamepad: reading {JS_DEVICE} failed ({error.strerror})")
                return
            if not data:
                log(f"gamepad: {JS_DEVICE} was closed")
                return
            buffer += data
            while len(buffer) >= JS_EVENT.size:
                _time, value, kind, number = JS_EVENT.unpack_from(buffer)
                buffer = buffer[JS_EVENT.size:]
                if kind & JS_EVENT_INIT:
                    continue
                if kind == JS_EVENT_BUTTON and value:
                    self.presses.put(number)
                elif kind == JS_EVENT_BUTTON:
                    log(f"gamepad button {number} released")

    def poll(self) -> None:
        """Paints for each button press the thread saw (within Tk's event loop)."""
        while not self.presses.empty():
            paint(GAMEPAD_COLOUR, f"gamepad button {self.presses.get()} pressed")
        root.after(PERIOD_MS, self.poll)


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


def show() -> None:
    if READY_FILE:
        pathlib.Path(READY_FILE + ".mapping").touch()
    root.deiconify()
    root.attributes("-fullscreen", True)
    signal_when_viewable()


log(f"started on {root.winfo_screen()} ({width}x{height})")
root.bind_all("<KeyPress>", on_key)
if os.environ.get("PULSE_SERVER"):
    threading.Thread(target=play_tone, name="tone", daemon=True).start()
gamepad = Gamepad()
threading.Thread(target=gamepad.run, name="gamepad", daemon=True).start()
root.after_idle(gamepad.poll)
if MAP_DELAY_S > 0:
    root.withdraw()
    log(f"mapping the window in {MAP_DELAY_S:g} s")
    root.after(int(MAP_DELAY_S * 1000), show)
else:
    root.after_idle(signal_when_viewable)
root.mainloop()
