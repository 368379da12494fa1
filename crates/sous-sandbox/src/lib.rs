//! The kernel-facing layer of Sous. Every raw syscall the project makes is wrapped here,
//! once, with a `SAFETY:` note, so the rest of the workspace stays free of `unsafe`.
//!
//! Issue 2 needs only process-lifecycle helpers: a child that runs in its own process group
//! and dies with Sous. Namespaces, cgroups and mounts arrive with the sandbox issue.

pub mod process;
