"""The kernel every stage builds on: settings, contracts, calendar, codes, warehouse I/O, publish,
dbt code generation and KPI definitions. It imports nothing else of bclake."""
