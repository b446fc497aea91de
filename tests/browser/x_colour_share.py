#!/usr/bin/python3
"""Prints the share (0 to 1) of an X display's root window that has a colour, from the pixels the X server holds.

Usage: x_colour_share.py DISPLAY #RRGGBB [TOLERANCE]

Used by tests/streaming_session_e2e.rs to see what a VNC viewer shows on its own Xvfb. Reads the screen with
XGetImage through ctypes (libX11 only, no toolkit); a 24-bit TrueColor screen is assumed, as Xvfb's default is.
Each channel may differ by TOLERANCE (default 40) from the colour. Exits 1 with a message when the display cannot be
read.
"""

import ctypes
import ctypes.util
import sys


class XImage(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int), ("format", ctypes.c_int),
        ("data", ctypes.POINTER(ctypes.c_ubyte)), ("byte_order", ctypes.c_int), ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int), ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int),
    ]


def main() -> int:
    display_name, colour = sys.argv[1], sys.argv[2]
    tolerance = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    target = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XGetImage.restype = ctypes.POINTER(XImage)
    x11.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                              ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
    for name in ("XDisplayWidth", "XDisplayHeight"):
        getattr(x11, name).argtypes = [ctypes.c_void_p, ctypes.c_int]
    display = x11.XOpenDisplay(display_name.encode())
    if not display:
        print(f"x_colour_share: cannot open display {display_name}", file=sys.stderr)
        return 1
    width, height = x11.XDisplayWidth(display, 0), x11.XDisplayHeight(display, 0)
    all_planes, z_pixmap = 0xFFFFFFFF, 2
    image = x11.XGetImage(display, x11.XDefaultRootWindow(display), 0, 0, width, height, all_planes, z_pixmap)
    if not image or image.contents.bits_per_pixel != 32:
        print(f"x_colour_share: cannot read a 32-bit image of {display_name}", file=sys.stderr)
        return 1
    img = image.contents
    data = ctypes.string_at(img.data, img.bytes_per_line * img.height)
    matching = 0
    # Sample every 4th pixel of every 4th row: plenty for a share, quick in pure Python.
    for y in range(0, img.height, 4):
        row = y * img.bytes_per_line
        for x in range(0, img.width, 4):
            b, g, r = data[row + 4 * x], data[row + 4 * x + 1], data[row + 4 * x + 2]
            if abs(r - target[0]) <= tolerance and abs(g - target[1]) <= tolerance and abs(b - target[2]) <= tolerance:
                matching += 1
    samples = len(range(0, img.height, 4)) * len(range(0, img.width, 4))
    print(f"{matching / samples:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
