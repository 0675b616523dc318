"""The test API server is real: it stores, validates and watches objects like a cluster's."""

from __future__ import annotations

import pytest


def test_apiserver_stores_and_validates_objects(kube_api):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fixture-svc", "namespace": "default"},
           "spec": {"ports": [{"port": 80}]}}
    created = kube_api.apply(svc)
    assert created["spec"]["clusterIP"].startswith("10.0.0.")
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "bad", "namespace": "default"},
           "spec": {"rules": [{"host": "x.example.com", "http": {"paths": [
               {"path": "/", "pathType": "Sideways", "backend": {"service": {"name": "a", "port": {"number": 80}}}}]}}]}}
    with pytest.raises(AssertionError, match="pathType"):
        kube_api.apply(bad)
    kube_api.delete(svc)
    assert kube_api.request("GET", kube_api.path_of(svc), ok_missing=True) == {}
