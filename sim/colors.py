"""One colour (and line style) per provider, the same in every figure.

Every figure that shows providers (``aicloud run``'s shares.png, the experiment figures, the
calibration figures, the dashboard) takes its colours from ``provider_styles(names)`` with the
providers in config order (incumbents, then entrants), so a provider keeps its colour from
figure to figure of one config.

Up to nine providers get Paul Tol's "muted" scheme, designed to stay distinct under the common
colour-vision deficiencies (Tol 2021, https://personal.sron.nl/~pault/).  Beyond nine no set of
colours stays distinct for every reader, so the colours are generated evenly spaced in hue in
CIE LCh (perceptually even steps), cycling through three tones of lightness, and the line
styles cycle (solid, dashed, dotted, dash-dot) as a second cue that does not depend on colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Paul Tol's muted qualitative scheme, in his order (rose, indigo, sand, green, cyan, wine, teal,
# olive, purple).
TOL_MUTED = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499")
LINE_STYLES = ("-", "--", ":", "-.")
TONES = (40.0, 58.0, 76.0)  # CIE L* of generated colours, cycled so that neighbours in hue differ in lightness
NEUTRAL = "#444444"  # market-level series (HHI, totals) and legends of generic bands


@dataclass(frozen=True)
class Style:
    color: str
    linestyle: str = "-"


def palette(n: int) -> list[str]:
    """``n`` distinct colours as hex strings: Tol's muted scheme for n <= 9, else generated."""
    if n <= len(TOL_MUTED):
        return list(TOL_MUTED[:n])
    return [_lch_hex(lightness=TONES[i % len(TONES)], chroma=55.0, hue=360.0 * i / n + 15.0) for i in range(n)]


def provider_styles(names: list[str]) -> dict[str, Style]:
    """Colour and line style per provider name, in the given (config) order.  Up to nine
    providers all lines are solid; beyond, the style cycles every provider as a second cue."""
    names = list(dict.fromkeys(names))
    colours = palette(len(names))
    many = len(names) > len(TOL_MUTED)
    return {name: Style(colours[i], LINE_STYLES[i % len(LINE_STYLES)] if many else "-")
            for i, name in enumerate(names)}


def provider_colours(names: list[str]) -> dict[str, str]:
    """Hex colour per provider name, in the given (config) order (see ``provider_styles``)."""
    return {name: style.color for name, style in provider_styles(names).items()}


def text_colour(colour: str) -> str:
    """``colour`` darkened until text in it reads on white (WCAG contrast >= 3): light line colours
    such as Tol's sand and cyan are kept for lines, and their labels get a darker shade of the hue."""
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    for _ in range(20):
        if 1.05 / (_luminance(r, g, b) + 0.05) >= 3.0:
            break
        r, g, b = 0.85 * r, 0.85 * g, 0.85 * b
    return "#" + "".join(f"{round(255 * c):02X}" for c in (r, g, b))


def _luminance(r: float, g: float, b: float) -> float:
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def config_provider_names(config) -> list[str]:
    """Provider names in config order from a ``Config`` or its resolved dict (a sweep's manifest)."""
    if isinstance(config, dict):
        return [p["name"] for p in [*config.get("providers", []), *config.get("entrants", [])]]
    return [p.name for p in config.all_providers]


def _lch_hex(lightness: float, chroma: float, hue: float) -> str:
    """CIE LCh(ab) -> sRGB hex (D65), lowering the chroma until the colour is displayable."""
    while chroma >= 0:
        rgb = _lab_to_srgb(lightness, chroma * math.cos(math.radians(hue)), chroma * math.sin(math.radians(hue)))
        if all(-1e-9 <= c <= 1 + 1e-9 for c in rgb):
            return "#" + "".join(f"{round(255 * min(max(c, 0.0), 1.0)):02X}" for c in rgb)
        chroma -= 1.0
    raise ValueError("no displayable colour")  # chroma 0 (grey) is always displayable


def _lab_to_srgb(lightness: float, a: float, b: float) -> tuple[float, float, float]:
    fy = (lightness + 16.0) / 116.0
    fx, fz = fy + a / 500.0, fy - b / 200.0

    def finv(t: float) -> float:
        return t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29)

    x, y, z = 0.95047 * finv(fx), 1.0 * finv(fy), 1.08883 * finv(fz)
    linear = (3.2406 * x - 1.5372 * y - 0.4986 * z, -0.9689 * x + 1.8758 * y + 0.0415 * z,
              0.0557 * x - 0.2040 * y + 1.0570 * z)

    def gamma(c: float) -> float:
        return 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055 if c > 0 else 12.92 * c

    return tuple(gamma(c) for c in linear)  # type: ignore[return-value]
