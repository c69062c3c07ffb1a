"""Real-process test harness shared by the tests and the demo (Pebble, proxies, ansible-playbook)."""
