"""MARKETS_AUTO_ADD: which markets a market sync adds to the universe by itself, as a rule read from one string."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULE_FIELDS", "AutoAddRule", "parse_auto_add"]

# What a rule may test, each a market record's field: `quote=USDT,type=spot`; `|` gives alternatives (`quote=USD|EUR`).
RULE_FIELDS = ("base", "quote", "type")


@dataclass(frozen=True)
class AutoAddRule:
    """Each field's accepted values; a market matches when every field given accepts its value."""

    accepts: tuple[tuple[str, frozenset[str]], ...]

    def matches(self, market: dict) -> bool:
        return all(str(market.get(name, "")) in values for name, values in self.accepts)

    def __str__(self) -> str:
        return ",".join(f"{name}={'|'.join(sorted(values))}" for name, values in self.accepts)


def parse_auto_add(text: str) -> AutoAddRule | None:
    """The rule `text` states, or None when it is empty (nothing added by itself); ValueError says what is wrong."""
    text = text.strip()
    if not text:
        return None
    accepts: dict[str, frozenset[str]] = {}
    for clause in text.split(","):
        name, sep, values = (part.strip() for part in clause.partition("="))
        if not sep or not name or not values:
            raise ValueError(f"{clause.strip()[:40]!r} is not field=value (e.g. quote=USDT,type=spot)")
        if name not in RULE_FIELDS:
            raise ValueError(f"unknown field {name[:40]!r}; a rule tests {', '.join(RULE_FIELDS)}")
        if name in accepts:
            raise ValueError(f"{name} is given twice; give alternatives with '|', e.g. {name}=USD|EUR")
        options = [value.strip() for value in values.split("|")]
        if any(not option for option in options):
            raise ValueError(f"{name} has an empty alternative")
        accepts[name] = frozenset(options)
    return AutoAddRule(tuple(sorted(accepts.items())))
