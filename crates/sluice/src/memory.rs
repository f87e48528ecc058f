//! The default memory budget (`--max-memory`): a share of the container's cgroup memory limit,
//! or of the machine's memory outside a limit, as RabbitMQ's `vm_memory_high_watermark`
//! (0.4 of the memory available) reads its own.

use std::fs;

/// The share of the memory available that messages may take by default: the rest is the
/// process's own (connections, buffers, references, the allocator's slack).
const SHARE_PERCENT: u64 = 40;

/// The default budget in bytes and where its base came from, or `None` if neither a cgroup
/// limit nor the machine's memory can be read.
pub(crate) fn default_max_memory() -> Option<(u64, &'static str)> {
    let (base, source) = cgroup_limit()
        .map(|l| (l, "the cgroup memory limit"))
        .or_else(|| machine_memory().map(|m| (m, "the machine's memory")))?;
    Some((base / 100 * SHARE_PERCENT, source))
}

/// cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`; `max` or a huge v1 value is none.
fn cgroup_limit() -> Option<u64> {
    let v2 = fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    let v1 = || fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").ok();
    let text = v2.or_else(v1)?;
    let limit: u64 = text.trim().parse().ok()?;
    // cgroup v1 writes "no limit" as a page-rounded i64::MAX.
    (limit < 1 << 60).then_some(limit)
}

/// `MemTotal` from `/proc/meminfo`.
fn machine_memory() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn this_machine_has_a_default_budget_below_its_memory() {
        let (budget, _) = super::default_max_memory().unwrap();
        let machine = super::machine_memory().unwrap();
        assert!(budget > 0 && budget < machine);
    }
}
