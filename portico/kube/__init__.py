"""`portico kube`: Kubernetes Ingresses, Services and EndpointSlices as a source of gorouter routes."""
