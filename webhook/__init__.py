"""meshswitch: a mutating admission webhook that injects the sidecar of the mesh a workload selects."""
