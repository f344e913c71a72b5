//! The global pool, behind the free functions `join`, `scope` and `spawn`
//! when they are called outside every pool. Started on first use with the
//! default configuration, or explicitly by `build_global`. It is never
//! dropped, so it is kept as its shared state rather than as a
//! `ThreadPool`.

use crate::config::{BuildError, PoolConfig, PoolOptions};
use crate::registry::Registry;
use crate::start::{self, Spawner};
use crate::sync::{Arc, OnceLock};

static GLOBAL: OnceLock<Arc<Registry>> = OnceLock::new();

/// Starts the global pool with `config`, its threads started by `spawner`;
/// fails if it already exists.
pub(crate) fn init(config: PoolConfig, spawner: Spawner<'_>) -> Result<(), BuildError> {
    if GLOBAL.get().is_some() {
        return Err(BuildError::GlobalPoolExists);
    }
    let mut started = Some(start::start(config, spawner)?);
    GLOBAL.get_or_init(|| started.take().expect("started above"));
    match started {
        None => Ok(()),
        // Another thread won the race: shut ours down.
        Some(registry) => {
            start::stop(&registry);
            Err(BuildError::GlobalPoolExists)
        }
    }
}

/// The global pool's shared state, starting it with the defaults if it
/// does not exist yet.
pub(crate) fn registry() -> &'static Arc<Registry> {
    GLOBAL.get_or_init(|| {
        PoolOptions::default()
            .validate()
            .and_then(|config| start::start(config, Spawner::Std))
            .unwrap_or_else(|error| panic!("pilfer: cannot build the global thread pool: {error}"))
    })
}
