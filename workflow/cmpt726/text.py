"""Numbers as the report, the comparison page, the figures and the statistics' answers write them."""

import math

MISSING = "–"  # an en dash: a value that is absent (None) or not a number


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value, digits: int = 3) -> str:
    """A number as the prose shows it: thousands separators, `digits` decimals, never "-0.000"; missing: a dash."""
    if _missing(value):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e7):
        return f"{value:.{max(digits - 1, 1)}e}"
    text = f"{value:,.{digits}f}"
    return text[1:] if text.startswith("-") and not float(text.replace(",", "")) else text


def signed(value, digits: int = 2) -> str:
    """A difference with its sign, "+1.23" or "-0.50"; one that rounds to zero is "0.00"; missing: an en dash."""
    if _missing(value):
        return MISSING
    text = f"{value:+.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0 else text
