"""Customer agreements, organisation and detector thresholds, loaded from YAML.

Every key is validated on load; an error names the file, the key and the problem, e.g.
`claimflow.yaml: clients[0].timezone: unknown time zone 'Europe/Londn'`. Unknown keys are
errors too: a misspelt threshold silently falling back to its default is worse than a refusal.
"""

from __future__ import annotations

import logging
import os
from datetime import date, time
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_package
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from claimflow.timeutil import Clock, SystemClock, parse_duration

log = logging.getLogger("claimflow.config")
MAX_FILE_BYTES = 16 * 1024 * 1024  # a configuration file larger than this is refused
MAX_DEPTH = 40  # YAML nested deeper than this is refused (no configuration needs more)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Scope = Literal["team", "hub", "client"]
FeedbackScope = Literal["client", "team"]


def _clock_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 12:00 as the sexagesimal number 720.
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str):
        raise ValueError(f'expected a local time of day such as "12:00", got {value!r}')
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f'expected a local time of day such as "12:00", got {value!r}') from None


def _duration(value: Any) -> float:
    return parse_duration(value)


def _zone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an IANA time zone name such as Europe/London, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Duration = Annotated[float, BeforeValidator(_duration)]
TimeZone = Annotated[str, BeforeValidator(_zone)]
Probability = Annotated[float, Field(gt=0, lt=1)]
Identifier = Annotated[str, Field(min_length=1, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Agreement(_Strict):
    """When a claim is due: reached the hub by `same_day_cutoff` local time on a business day:
    due at `due` that day; otherwise due at `due` on the next business day."""

    same_day_cutoff: ClockTime = time(12, 0)
    due: ClockTime = time(18, 0)
    business_days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)

    @model_validator(mode="after")
    def _cutoff_before_due(self) -> Agreement:
        if self.same_day_cutoff > self.due:
            raise ValueError(
                f"same_day_cutoff {self.same_day_cutoff:%H:%M} is after due {self.due:%H:%M}: "
                "a same-day claim would be due before it arrived"
            )
        return self


class Client(_Strict):
    id: Identifier
    timezone: TimeZone | None = None
    same_day_cutoff: ClockTime | None = None
    due: ClockTime | None = None
    business_days: list[Weekday] | None = Field(default=None, min_length=1)


class WorkingHours(_Strict):
    """When a team works, in its time zone. Used to project how much it can still do."""

    start: ClockTime = time(8, 0)
    end: ClockTime = time(18, 0)
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)

    @model_validator(mode="after")
    def _start_before_end(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError(f"start {self.start:%H:%M} must be before end {self.end:%H:%M}")
        return self


def _team_entry(value: Any) -> Any:
    # The contract writes teams as plain names; an entry may also be a mapping with an id.
    return {"id": value} if isinstance(value, str) else value


class Team(_Strict):
    id: Identifier
    timezone: TimeZone | None = None
    working_hours: WorkingHours | None = None


class Hub(_Strict):
    id: Identifier
    centers: list[Identifier] = Field(min_length=1)


class EngineSettings(_Strict):
    window: Duration = 300.0
    """Width of the tumbling event-time windows that counts are kept in."""
    allowed_lateness: Duration = 25.0
    """How far behind the newest event time an event may arrive and still count in its window.

    It must cover the disorder the engine sees, and live that is the disorder inside one input
    partition: the live merge (claimflow/live/merge.py) already releases records across
    partitions in event-time order, so what is left is how much later than the freshest
    events an event reaches its partition (the sources' transport jitter; the simulator
    models up to 20 s, `claimflow.tools.simulate`). 25 s covers that with a margin. It is also the
    wall time the live worker adds to every detection (a tick is judged once event time is
    this far past it), so it is kept small: raise it for sources that deliver later."""
    evaluate_every: Duration = 60.0
    """Event-time interval between detector evaluations."""
    dedupe_horizon: Duration = 86400.0
    """How long (in event time) an event_id is remembered to drop a second delivery."""
    claim_memory: Duration = 7 * 86400.0
    """How long a completed claim's team is remembered, to attribute late survey answers."""
    max_jump: Duration = 30 * 86400.0
    """An event this far ahead of every event seen so far is refused (`future_timestamp`)."""

    @model_validator(mode="after")
    def _consistent(self) -> EngineSettings:
        if self.window <= 0 or self.evaluate_every <= 0:
            raise ValueError("window and evaluate_every must be positive")
        if self.window % self.evaluate_every:
            raise ValueError("window must be a whole multiple of evaluate_every")
        if self.dedupe_horizon < self.allowed_lateness:
            raise ValueError("dedupe_horizon must be at least allowed_lateness")
        return self


class InflowDropSettings(_Strict):
    scopes: list[Scope] = Field(default_factory=lambda: list[Scope](["team", "hub"]))
    window: Duration = 3600.0
    """Trailing window whose arrivals are compared with the same window on reference days."""
    reference_weeks: int = Field(default=3, ge=1, le=8)
    min_references: int = Field(default=2, ge=1)
    drop_ratio: float = Field(default=0.5, gt=0, lt=1)
    resolve_ratio: float = Field(default=0.8, gt=0, le=2)
    min_expected: float = Field(default=20.0, ge=1)
    false_alarms_per_quarter: float = Field(default=1.0, gt=0)
    """The budget per scope and quarter; sets max_p_value unless that is given."""
    max_p_value: Probability | None = None
    """Per-window probability; default: budget x window / quarter (Bonferroni)."""
    dispersion: float = Field(default=2.0, ge=1)
    """How many times more claim counts vary than a Poisson process (quasi-Poisson factor)."""
    explained_share: float = Field(default=0.5, gt=0, le=1)
    """A hub's drop explains a team's when its route's missing arrivals are this share."""
    hold: Duration = 600.0
    """How long the drop must last before the alert fires (like Prometheus `for:`)."""


class HubLinkSettings(_Strict):
    """HubLinkBreak: a sequential test on per-claim evidence (docs/detectors.md)."""

    false_alarms_per_year: float = Field(default=1.0, gt=0)
    """The false-alarm budget per route; the test's thresholds follow from it."""
    min_claims_per_year: float = Field(default=10_000.0, ge=1)
    """The route volume assumed until its own is measured (a floor: more is cautious)."""
    lost_shares: list[float] = Field(default_factory=lambda: [0.5, 0.85, 1.0], min_length=1)
    """Shares of lost claims the test looks for (1.0: total break)."""
    min_samples: int = Field(default=100, ge=1)
    """Healthy transits a route must have shown before missing claims are judged: the
    first arrivals over-represent fast transits (the slow ones are still on the way)."""
    missing_survival: Probability = 0.01
    """A claim in transit counts as missing (views, episode figures) once fewer than this
    share of healthy claims take as long; not used by the decision itself."""
    write_off_after: Duration = 86400.0
    """A claim not arrived this long after its dispatch is written off (counted)."""
    max_samples: int = Field(default=200_000, ge=100)
    """Healthy transit samples a route's curve keeps at full weight; older ones count half."""
    dispersion: float = Field(default=1.5, ge=1)
    """Silence: how many times more arrival counts vary than a Poisson process."""
    silence_share: float = Field(default=0.2, gt=0, lt=1)
    """Share of the false-alarm budget spent on the silence test; the missing-claims test
    gets the rest. Silence only decides when a hub stops dispatching altogether (while
    dispatches go on, the missing claims tell sooner), so it gets the smaller share."""

    @field_validator("lost_shares")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if any(not 0 < q <= 1 for q in value):
            raise ValueError("every lost share must be above 0 and at most 1")
        return value


class SlaAtRiskSettings(_Strict):
    horizon: Duration = 36000.0
    """Deadlines further ahead than this are not projected (the pace then says little)."""
    min_misses: int = Field(default=5, ge=1)
    min_miss_share: float = Field(default=0.1, ge=0, le=1)
    """...and at least this share of the claims due at that deadline."""
    hold: Duration = 900.0
    keep_firing_for: Duration = 1800.0
    """How long the queue must look clear before an episode resolves (no flapping)."""
    throughput_window: Duration = 7200.0
    min_busy: Duration = 1800.0
    """Busy working time needed in throughput_window before the pace is trusted."""


class NegativeFeedbackSettings(_Strict):
    """Risk-adjusted Bernoulli CUSUM per scope (docs/detectors.md)."""

    scopes: list[FeedbackScope] = Field(
        default_factory=lambda: list[FeedbackScope](["client", "team"])
    )
    negative_max_score: int = Field(default=2, ge=1, le=4)
    window: Duration = 21600.0
    """Trailing window the alert's figures cover; the learning days end before it."""
    baseline_days: int = Field(default=14, ge=1, le=60)
    min_baseline_responses: int = Field(default=30, ge=1)
    min_history: Duration = 7 * 86400.0
    """No judgement before this much event time has been seen (the baseline warms up)."""
    prior_strength: float = Field(default=20.0, gt=0)
    """Pseudo-answers of the pooled share each risk class (and scope factor) starts from, at
    least: the classes' own spread may pool them further (empirical Bayes); late classes and
    scope factors use exactly this."""
    late_prior_share: float = Field(default=0.5, ge=0, lt=1)
    """Prior negative share for claims past their deadline, until their own data says more."""
    odds_ratio: float = Field(default=6.0, gt=1)
    """The rise in the odds of a negative answer the CUSUM is tuned to detect."""
    false_alarms_per_quarter: float = Field(default=1.0, gt=0)
    """The budget: at most this many false alarms per scope per quarter (sets the threshold)."""
    threshold: Literal["bound", "negatives", "approximate"] = "bound"
    """How the budget becomes the CUSUM threshold: Ville's bound over every answer (a
    guarantee), the same bound over negative answers only (a guarantee, about one unit lower:
    faster, spends more of the budget) or Siegmund's run-length approximation (faster, exact
    only when the model is)."""
    resolve_ratio: float = Field(default=1.5, gt=0)
    """The episode resolves once the trailing window holds at most this many times the
    expected negatives (and the CUSUM, restarted when it fired, is below its threshold)."""
    claim_horizon: Duration = 7 * 86400.0
    """How long a claim's receipt, deadline and completion are kept for its survey answers."""
    max_claims: int = Field(default=500_000, ge=1)
    """Bound on the claims remembered for survey answers (the oldest go first)."""


class DetectorSettings(_Strict):
    inflow_drop: InflowDropSettings = Field(default_factory=InflowDropSettings)
    hub_link_break: HubLinkSettings = Field(default_factory=HubLinkSettings)
    sla_at_risk: SlaAtRiskSettings = Field(default_factory=SlaAtRiskSettings)
    negative_feedback: NegativeFeedbackSettings = Field(default_factory=NegativeFeedbackSettings)


class HolidayCalendar(_Strict):
    """Public holidays from the `holidays` package (a country and optionally a subdivision,
    e.g. DE and BY) for the years `years` (first, last), plus the configuration's own
    `dates`. Written by hand before: a library that tracks every country's law is better."""

    country: str | None = None
    subdivision: str | None = None
    years: tuple[int, int] = (2020, 2035)
    dates: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> HolidayCalendar:
        if self.subdivision is not None and self.country is None:
            raise ValueError("holidays.subdivision needs holidays.country")
        if self.years[0] > self.years[1]:
            raise ValueError("holidays.years must be (first, last) with first <= last")
        if self.country is not None:
            self.public_dates()  # an unknown country or subdivision fails at load time
        return self

    def public_dates(self) -> list[date]:
        if self.country is None:
            return []
        try:
            table = holiday_package.country_holidays(
                self.country,
                subdiv=self.subdivision,
                years=range(self.years[0], self.years[1] + 1),
            )
        except NotImplementedError as exc:
            raise ValueError(
                f"holidays: no public holidays known for {self.country!r}"
                + (f" subdivision {self.subdivision!r}" if self.subdivision else "")
                + f" ({exc})"
            ) from None
        return sorted(table)


def _holiday_entry(value: Any) -> Any:
    """Today's list form (`holidays: [2026-12-25]`) stays valid: it is the `dates`."""
    if value is None:
        return HolidayCalendar()
    if isinstance(value, list | tuple):
        return {"dates": value}
    return value


class Config(_Strict):
    timezone: TimeZone = "Europe/London"
    defaults: Agreement = Field(default_factory=Agreement)
    holiday_calendar: Annotated[HolidayCalendar, BeforeValidator(_holiday_entry)] = Field(
        default_factory=HolidayCalendar, alias="holidays"
    )
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    clients: list[Client] = Field(default_factory=list)
    teams: list[Annotated[Team, BeforeValidator(_team_entry)]] = Field(min_length=1)
    hubs: list[Hub] = Field(min_length=1)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)

    @field_validator("teams")
    @classmethod
    def _teams_unique(cls, teams: list[Team]) -> list[Team]:
        _unique([t.id for t in teams], "team")
        return teams

    @field_validator("clients")
    @classmethod
    def _clients_unique(cls, clients: list[Client]) -> list[Client]:
        _unique([c.id for c in clients], "client")
        return clients

    @field_validator("hubs")
    @classmethod
    def _hubs_unique(cls, hubs: list[Hub]) -> list[Hub]:
        _unique([h.id for h in hubs], "hub")
        return hubs

    @cached_property
    def team_settings(self) -> dict[str, Team]:
        """Every team with its time zone and working hours filled in from the defaults."""
        out: dict[str, Team] = {}
        for team in self.teams:
            out[team.id] = Team(
                id=team.id,
                timezone=team.timezone or self.timezone,
                working_hours=team.working_hours or self.working_hours,
            )
        return out

    @cached_property
    def holidays(self) -> list[date]:
        """Every date that is not a business day for anyone: the public holidays of the
        configured country and subdivision, and the configuration's own dates."""
        cal = self.holiday_calendar
        return sorted(set(cal.public_dates()) | set(cal.dates))

    @cached_property
    def hub_centers(self) -> dict[str, tuple[str, ...]]:
        return {hub.id: tuple(hub.centers) for hub in self.hubs}


def _unique(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what} {item!r} is listed twice")
        seen.add(item)


class ConfigError(Exception):
    """A configuration that cannot be used; the message names file, key and problem."""


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def parse_config(data: Any, source: str = "<config>") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, source)) from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None


def describe(exc: ValidationError, source: str, docs: str = "docs/configuration.md") -> str:
    """One line per problem: file, key path, what is wrong."""
    lines: list[str] = []
    seen: set[str] = set()
    for error in exc.errors():
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            msg = f"unknown key (check the spelling; see {docs})"
        line = f"{source}: {_location(tuple(error['loc']))}: {msg}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return "\n".join(lines)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's data. Anything wrong with the file (unreadable, too large, not UTF-8
    text, not YAML, nested too deeply) is a ConfigError naming the file and the place."""
    source = str(path)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}: line {line}: not UTF-8 text (byte {exc.start}: "
            f"{raw[exc.start : exc.start + 1]!r}); save the file as UTF-8"
        ) from None
    return _parse_yaml(text, source)


def _parse_yaml(text: str, source: str) -> Any:
    if "\x00" in text:
        raise ConfigError(
            f"{source}: line {text[: text.index(chr(0))].count(chr(10)) + 1}: "
            "a NUL character: this is a binary file, not YAML"
        )
    _check_depth(text, source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply (at most {MAX_DEPTH} levels)") from None


def _check_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before the parser recurses into it: YAML's
    composer (and later the validation) would otherwise exhaust Python's stack."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                    raise ConfigError(f"{source}: {where}nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # safe_load reports it, with its place


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a configuration file; `None` loads the bundled example."""
    if path is None:
        text = resources.files("claimflow").joinpath("data/claimflow.yaml").read_text("utf-8")
        source = "claimflow/data/claimflow.yaml"
        return parse_config(_parse_yaml(text, source), source)
    return parse_config(read_yaml(path), str(path))


T = TypeVar("T")


class WatchedFile(Generic[T]):
    """A file the live worker reloads when it changes on disk (the agreements, the roster).

    Checked at most every `check_every` seconds of the worker's clock. A changed file that
    loads replaces the value (`current()` returns the new object). One that does not keeps the
    last good value in use: the error is logged once per version of the file and counted in
    `errors` (exported as a metric), so a typo never stops the worker. A bad file at start-up
    is a start-up error.
    """

    what = "file"  # how the log names it

    def __init__(self, path: Path, check_every: float, clock: Clock | None) -> None:
        self.path = path
        self.check_every = check_every
        self.clock = clock or SystemClock()
        self.value = self.load()
        self.stamp = self._stamp()
        self.checked = self.clock.now()
        self.errors = 0
        self.reloads = 0

    def load(self) -> T:
        raise NotImplementedError

    def accept(self, value: T) -> None:
        """A version that loaded: take it (and say so)."""
        self.value = value
        self.reloads += 1
        log.info("%s %s reloaded", self.what, self.path)

    def _stamp(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return st.st_mtime_ns, st.st_size

    def current(self) -> T:
        now = self.clock.now()
        if now - self.checked < self.check_every:
            return self.value
        self.checked = now
        try:
            stamp = self._stamp()
        except OSError as exc:
            if self.stamp != (0, 0):
                self.errors += 1
                log.error("%s %s: %s; keeping the last good one", self.what, self.path, exc)
                self.stamp = (0, 0)
            return self.value
        if stamp == self.stamp:
            return self.value
        self.stamp = stamp
        try:
            value = self.load()
        except (ConfigError, OSError) as exc:
            self.errors += 1
            log.error(
                "%s %s did not load; keeping the last good one:\n%s", self.what, self.path, exc
            )
            return self.value
        except Exception:  # a bug in validation must not stop the worker either
            self.errors += 1
            log.exception("%s %s did not load; keeping the last good one", self.what, self.path)
            return self.value
        self.accept(value)
        return self.value


class ConfigFile(WatchedFile[Config]):
    """The agreements file: a changed file that loads replaces the configuration (the worker
    then rebuilds its state with it); errors count in `claimflow_config_reload_errors_total`."""

    what = "agreements"

    def __init__(self, path: Path, check_every: float = 10.0, clock: Clock | None = None) -> None:
        super().__init__(path, check_every, clock)

    @property
    def config(self) -> Config:
        return self.value

    def load(self) -> Config:
        return load_config(self.path)

    def accept(self, value: Config) -> None:
        if value != self.value:  # touched but the same: nothing to rebuild
            self.reloads += 1
            log.warning("agreements %s changed: applying them", self.path)
            self.value = value
