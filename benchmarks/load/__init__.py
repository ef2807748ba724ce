"""The load test's parts, one job each: ``workload`` (the request mix), ``server`` (the measured processes),
``drivers`` (open- and closed-loop senders), ``report`` (statistics and tables); ``benchmarks/service_load.py``
puts them together.
"""
