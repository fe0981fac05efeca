"""Configuration: read ``config.yaml`` once, validate everything, hand out typed objects.

Every problem is reported together, each with the file, the key path
(``rules[2].keywords``), the line and what was expected, so a user fixes the whole
file in one go. Nothing else in newswatch reads raw YAML.

The package: `values` (limits, ConfigError, the validated value types), `watch`
(sources, rules, recipients), `schema` (the other sections and `Config`),
`references` (the checks between sections: names unique and naming something),
`spelling` ("did you mean"), `salvage` (those checks on a file with other errors
too) and `loading` (reading the file, line numbers in messages, warnings). This
module re-exports the names the rest of newswatch uses.

Layer 1, domain (part of crawler.domain). May import: crawler.domain only.
"""

from __future__ import annotations

from crawler.domain.config.loading import (
    check_scale_out,
    config_path,
    config_warnings,
    load_config,
    parse_config,
)
from crawler.domain.config.schema import Config, DeliveryConfig, Recipient, WebConfig
from crawler.domain.config.spelling import name_hint
from crawler.domain.config.values import (
    MAX_SUBJECT_CHARS,
    MAX_SUBJECT_TEMPLATE_CHARS,
    MAX_SUBJECT_WIDTH,
    ConfigError,
    check_subject_template,
    cron_trigger,
    is_xpath,
    parse_duration,
    subject_placeholder_problem,
)
from crawler.domain.config.watch import WEEKDAYS, RuleConfig, SourceConfig

__all__ = [
    "MAX_SUBJECT_CHARS",
    "MAX_SUBJECT_TEMPLATE_CHARS",
    "MAX_SUBJECT_WIDTH",
    "WEEKDAYS",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "Recipient",
    "RuleConfig",
    "SourceConfig",
    "WebConfig",
    "check_scale_out",
    "check_subject_template",
    "config_path",
    "config_warnings",
    "cron_trigger",
    "is_xpath",
    "load_config",
    "name_hint",
    "parse_config",
    "parse_duration",
    "subject_placeholder_problem",
]
