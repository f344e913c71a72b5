//! The global pool, behind the free functions `join`, `scope` and `spawn`
//! when they are called outside every pool. Built on first use with the
//! default configuration, or explicitly by `build_global`.

use crate::builder::{BuildError, ThreadPoolBuilder};
use crate::pool::ThreadPool;
use crate::registry::Registry;
use crate::sync::{Arc, OnceLock};

static GLOBAL: OnceLock<ThreadPool> = OnceLock::new();

/// Builds the global pool from `builder`; fails if it already exists.
pub(crate) fn init(builder: ThreadPoolBuilder) -> Result<(), BuildError> {
    if GLOBAL.get().is_some() {
        return Err(BuildError::GlobalPoolExists);
    }
    let mut built = Some(builder.build()?);
    GLOBAL.get_or_init(|| built.take().expect("built above"));
    match built {
        None => Ok(()),
        // Another thread won the race; ours shuts down as it drops.
        Some(_) => Err(BuildError::GlobalPoolExists),
    }
}

/// The global pool, built with the defaults if it does not exist yet.
pub(crate) fn pool() -> &'static ThreadPool {
    GLOBAL.get_or_init(|| {
        ThreadPoolBuilder::new()
            .build()
            .unwrap_or_else(|error| panic!("pilfer: cannot build the global thread pool: {error}"))
    })
}

pub(crate) fn registry() -> &'static Arc<Registry> {
    &pool().registry
}
