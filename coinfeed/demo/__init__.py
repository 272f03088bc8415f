"""``coinfeed demo``: the whole pipeline on a laptop (local Kafka, replay producers, the hourly job),
the hourly report, and the dashboards/alert-rule helpers shared by the demo and its tests."""
