"""The ``[scep]`` section of the config: labels, their passwords, and the RA's key.

```toml
[scep]
default_label = ""                # the label at /scep/ and /scep/pkiclient.exe ("" = none)
enroll_wait_seconds = 5.0         # how long a PKCSReq waits for a fast CA before PENDING
otp_lifetime_seconds = 86400      # how long a one-time password stays valid
ra_key_file = ""                  # default: <data_dir>/scep-ra.key (made on first start, 0600)
ra_cert_file = ""                 # default: <data_dir>/scep-ra.pem (self-signed, made with it)

[scep.labels.routers]
profile = "default"               # a [profiles.NAME]: its policy and its CA
password_file = "/etc/acme-gateway/scep-routers.secret"  # static challenge password
one_time_passwords = false        # accept passwords from `acme-gateway scep otp`
names = ["*.routers.corp.example"]  # what a request with the label's password may ask for
renewal = true                    # RenewalReq signed by a certificate issued here
legacy_algorithms = false         # triple DES and MD5 for devices that know nothing else
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.config import Settings, label_profile, name_patterns
from gateway.config_table import Table
from gateway.core.scep import ScepGate

RESERVED = ("pkiclient.exe",)


@dataclass(frozen=True)
class ScepLabel:
    """One SCEP label (``/scep/<label>/pkiclient.exe``)."""

    gate: ScepGate
    renewal: bool = True
    legacy_algorithms: bool = False

    @property
    def name(self) -> str:
        """The label's name."""
        return self.gate.label


@dataclass(frozen=True)
class ScepSettings:
    """Everything the SCEP front end is configured with."""

    labels: Mapping[str, ScepLabel] = field(default_factory=dict)
    default_label: str = ""
    ra_key_file: Path = Path("scep-ra.key")
    ra_cert_file: Path = Path("scep-ra.pem")

    def label(self, name: str | None) -> ScepLabel | None:
        """The label of a request path (None for the bare path: the default label)."""
        return self.labels.get(self.default_label if name is None else name)


def _label(t: Table, name: str, settings: Settings, common: ScepGate) -> ScepLabel:
    profile = label_profile(t, name, settings, RESERVED, "pkiclient.exe")
    password = t.secret("password")
    otp = t.bool("one_time_passwords")
    if password is None and not otp:
        raise t.error("password_file", "a SCEP label needs a challenge password: set "
                      "password_file (or password_env), or one_time_passwords = true")
    gate = replace(common, label=name, profile=profile, names=name_patterns(t, "names"),
                   static_password=password.strip() if password is not None else None,
                   one_time_passwords=otp)
    if password is not None and not gate.names:
        raise t.error("names", "a label with a static password must bind it to names: list "
                      "the names its devices may request (globs or 're:' patterns)")
    label = ScepLabel(gate, renewal=t.bool("renewal", True),
                      legacy_algorithms=t.bool("legacy_algorithms"))
    t.check_unknown()
    return label


def parse(settings: Settings) -> ScepSettings:
    """Parse ``settings.extra["scep"]``; an absent section means no SCEP label is served."""
    raw: Mapping[str, Any] = settings.extra.get("scep", {})
    t = Table(settings.source, "scep", raw)
    labels_t = t.table("labels")
    common = ScepGate(label="", profile="",
                      otp_lifetime_seconds=t.int("otp_lifetime_seconds", 86400, 60, 90 * 86400),
                      wait_seconds=t.float("enroll_wait_seconds", 5.0))
    labels = {n: _label(labels_t.table(n), n, settings, common) for n in labels_t.data}
    default = t.str("default_label", "")
    if default and default not in labels:
        raise t.error("default_label", f"names no label; configured: {', '.join(labels)}")
    data_dir = settings.server.data_dir
    scep = ScepSettings(
        labels=labels, default_label=default,
        ra_key_file=Path(t.str("ra_key_file", "") or data_dir / "scep-ra.key"),
        ra_cert_file=Path(t.str("ra_cert_file", "") or data_dir / "scep-ra.pem"))
    t.check_unknown()
    return scep
