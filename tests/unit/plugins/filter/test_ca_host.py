"""The ca_host filter: which host keeps the CA, as the fleet's inventory says."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mtls.fleet.plugins.filter.ca_host import ca_host


def test_the_controller_when_no_host_names_one():
    assert ca_host(["web-1", "localhost"], {"web-1": {}, "localhost": {}}) == {"name": "localhost", "local": True, "outside": False}


def test_the_host_the_inventory_names():
    hostvars = {"web-1": {"mtls_ca_host": "ca-1"}, "web-2": {"mtls_ca_host": "ca-1"}, "localhost": {}, "ca-1": {}}
    assert ca_host(["web-1", "web-2", "localhost"], hostvars) == {"name": "ca-1", "local": False, "outside": False}


def test_hosts_that_disagree_are_named():
    hostvars = {"web-1": {"mtls_ca_host": "ca-1"}, "web-2": {"mtls_ca_host": "ca-2"}, "ca-1": {}, "ca-2": {}}
    with pytest.raises(AnsibleFilterError, match=r"mtls_ca_host differs between the fleet's hosts \(web-1 name ca-1; web-2 name ca-2\)"):
        ca_host(["web-1", "web-2"], hostvars)


def test_a_ca_host_missing_from_the_inventory_is_named():
    with pytest.raises(AnsibleFilterError, match=r"mtls_ca_host is 'ca-9', which is not in this run's inventory.*run them unsliced"):
        ca_host(["web-1"], {"web-1": {"mtls_ca_host": "ca-9"}})


def test_site_reaches_a_ca_host_outside_its_slice_by_name():
    hostvars = {"web-1": {"mtls_ca_host": "ca.example.org"}, "localhost": {}}
    assert ca_host(["web-1", "localhost"], hostvars, True) == {"name": "ca.example.org", "local": False, "outside": True}
