"""Prometheus metrics: what the long-running mirror serves and what batch commands leave behind.

    options   where metrics go (flags, or the config file's [metrics] table), checked once
    hooks     the calls the mirror engine makes (a no-op object when metrics are off)
    mirror    the mirror's counters, histograms and its scrape-time collector (lag, freshness)
    peek      reads, at scrape time, the first unmirrored record of partitions the mirror is not fetching
    server    the /metrics HTTP endpoint
    batch     a batch command's outcome as a textfile-collector file or a Pushgateway push
    scrape    reading a mirror's /metrics back (the demo's final lag)
"""
