//! eBPF program load and cgroup attach (cgroup v2 device controller). Owned by the cgroups work.
