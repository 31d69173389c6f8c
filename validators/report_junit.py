"""A validation result as JUnit XML, for CI dashboards: one test case per topic.

A topic with divergences is a failed test case whose failure text lists the counts and the
examples; parity is a passed case.  Informational counts (unmirrored, gone) go to
system-out, never to failures.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from migrate.validators.divergence import KINDS, ValidationResult


def render_junit(result: ValidationResult) -> str:
    failures = sum(1 for t in result.topics if t.divergences or t.only_on)
    suites = ET.Element("testsuites", name="migrate validate", tests=str(len(result.topics)),
                        failures=str(failures), time=f"{result.duration_s:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=f"parity.{result.mode}", tests=str(len(result.topics)),
                          failures=str(failures), errors="0", skipped="0", time=f"{result.duration_s:.3f}",
                          timestamp=(result.started_at or "").rstrip("Z"))
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", result.run_id), ("mode", result.mode), ("mirror", result.mirror),
                        ("source", result.source), ("target", result.target), ("range_from", result.range_from),
                        ("range_to", result.range_to), ("records_compared", result.records_compared)):
        ET.SubElement(props, "property", name=name, value="" if value is None else str(value))
    for topic in result.topics:
        case = ET.SubElement(suite, "testcase", classname="migrate.validate", name=topic.topic, time="0")
        if topic.divergences:
            counts = ", ".join(f"{topic.counts.get(k, 0)} {k}" for k in KINDS if topic.counts.get(k, 0))
            lines = [f"{topic.divergences} divergent records in {topic.records_compared} compared: {counts}"]
            for d in result.examples:
                if d.topic != topic.topic:
                    continue
                row = d.as_dict()
                lines.append(f"{d.kind} partition={row['partition']} source_offset={row['source_offset']} "
                             f"target_offset={row['target_offset']} key={row['key']}"
                             + (f" field={d.field}" if d.field else "") + (f" ({d.detail})" if d.detail else ""))
            failure = ET.SubElement(case, "failure", message=lines[0], type="divergence")
            failure.text = "\n".join(lines)
        elif topic.only_on:
            message = f"topic exists on the {topic.only_on} only; nothing compared"
            ET.SubElement(case, "failure", message=message, type="divergence").text = message
        info = ", ".join(f"{v} {k}" for k, v in topic.info.items() if v)
        ET.SubElement(case, "system-out").text = (
            f"{topic.records_compared} records compared in {topic.partitions} partitions"
            + (f"; {info}" if info else ""))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
