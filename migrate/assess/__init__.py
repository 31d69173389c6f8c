"""`migrate assess`: know an estate before moving it.

One module per idea: `inventory` (what the source holds, measured read-only), `sampling`
(the bounded record sample and what it shows), `readiness` (the estate's behaviours against
the target's probe results), `plan` (copy time, dual-run bandwidth and storage, costs,
playbook vars), `summary` and `report_html` (outputs), `assessment` (one run of all of it).
"""
