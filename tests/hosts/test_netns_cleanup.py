"""The simulated hosts leave nothing behind: namespaces and links go even when a test or a setup step fails."""

from __future__ import annotations

import subprocess

import pytest

from tests.hosts.netns import namespaces, network_hosts

pytestmark = pytest.mark.integration


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_netns_hosts_are_removed_when_the_test_inside_fails():
    with pytest.raises(RuntimeError, match="the test failed"), network_hosts(("probe-a", "probe-b")) as hosts:
        assert {host.namespace for host in hosts} <= namespaces()
        assert all(f" {host.link}@" in _links() for host in hosts)
        raise RuntimeError("the test failed")
    assert not {host.namespace for host in hosts} & namespaces()
    assert not any(f" {host.link}@" in _links() for host in hosts)


def test_netns_a_setup_step_that_fails_undoes_only_what_it_made():
    with network_hosts(("probe",)) as made:
        # The same name again: `ip netns add` refuses, and the failed setup must not remove the first one.
        with pytest.raises(RuntimeError, match="netns add"), network_hosts(("probe",)):
            pass
        assert made[0].namespace in namespaces()
        assert subprocess.run(["ip", "netns", "exec", made[0].namespace, "ip", "-o", "addr"], capture_output=True,
                              text=True, check=True).stdout.count(made[0].address) == 1
    assert made[0].namespace not in namespaces()
