//! The hosts of one run: each with its transport, its layout (its own root) and its
//! interpreter, and how a fleet is switched.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hoist_config::Config;
use hoist_transport::{Local, Transport};

use crate::Layout;

/// One host of a run.
pub struct Host {
    /// The inventory name, shown in every message and event.
    pub name: String,
    pub transport: Box<dyn Transport>,
    pub layout: Layout,
    /// The interpreter command on this host.
    pub python: String,
    /// The host's `vars` from the inventory; hooks, restarts and health commands get them as
    /// `HOIST_VAR_<NAME>`.
    pub vars: BTreeMap<String, String>,
}

impl Host {
    /// This machine, with the root and interpreter of `config`.
    pub fn local(config: &Config) -> Host {
        Host {
            name: "local".into(),
            transport: Box::new(Local::default()),
            layout: Layout::new(&config.release),
            python: config.app.python.clone(),
            vars: BTreeMap::new(),
        }
    }

    /// How this host is reached.
    pub fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("root", &self.layout.root)
            .finish()
    }
}

/// How the new release goes live across the fleet, batch by batch (invariant 6: only after
/// every host is prepared). The engine's form of the inventory's `activation` setting, with
/// a rolling batch resolved to a number of hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every host switches, then every host restarts and is checked.
    All,
    /// `batch` hosts at a time, each batch healthy before the next, `pause` in between.
    Rolling { batch: usize, pause: Duration },
    /// The first host must pass its health check before the others switch.
    Canary,
}

impl Rollout {
    /// The rollout an environment's `activation` setting asks for, over `hosts` hosts.
    pub fn from_config(activation: &hoist_config::Activation, hosts: usize) -> Rollout {
        match activation {
            hoist_config::Activation::All => Rollout::All,
            hoist_config::Activation::Canary => Rollout::Canary,
            hoist_config::Activation::Rolling { batch, pause } => Rollout::Rolling {
                batch: batch.size(hosts),
                pause: *pause,
            },
        }
    }

    /// The batches of host indexes, in order.
    pub fn batches(&self, hosts: usize) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..hosts).collect();
        match self {
            Rollout::All => vec![all],
            Rollout::Rolling { batch, .. } => {
                all.chunks((*batch).max(1)).map(<[usize]>::to_vec).collect()
            }
            Rollout::Canary if hosts > 1 => vec![vec![0], all[1..].to_vec()],
            Rollout::Canary => vec![all],
        }
    }

    pub fn pause(&self) -> Duration {
        match self {
            Rollout::Rolling { pause, .. } => *pause,
            _ => Duration::ZERO,
        }
    }
}

/// The hosts of one run and how they are driven.
#[derive(Debug)]
pub struct Fleet {
    /// The environment's name (`local` for the single-machine default).
    pub name: String,
    pub hosts: Vec<Host>,
    pub rollout: Rollout,
    /// Hosts worked on at once.
    pub forks: usize,
}

impl Fleet {
    /// This machine alone.
    pub fn local(config: &Config) -> Fleet {
        Fleet {
            name: "local".into(),
            hosts: vec![Host::local(config)],
            rollout: Rollout::All,
            forks: 1,
        }
    }

    /// Runs `f` on each item, at most `forks` at once; results in order. For work before the
    /// hosts exist (connecting to them).
    pub fn run_each<T: Sync, R: Send>(&self, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
        par_map(items, self.forks, f)
    }

    /// Runs `f(index, host)` on each host, at most `forks` at once; results in host order.
    pub fn each<R: Send>(&self, f: impl Fn(usize, &Host) -> R + Sync) -> Vec<R> {
        self.each_of(&(0..self.hosts.len()).collect::<Vec<_>>(), f)
    }

    /// Like [`Fleet::each`] over the hosts at `indexes`.
    pub fn each_of<R: Send>(
        &self,
        indexes: &[usize],
        f: impl Fn(usize, &Host) -> R + Sync,
    ) -> Vec<R> {
        par_map(indexes, self.forks, |&i| f(i, &self.hosts[i]))
    }
}

/// Each host's connection closes as its transport drops (over SSH: the master is told to exit
/// and waited for, ~20 ms): every host at once, so that a fleet's end does not cost that per
/// host.
impl Drop for Fleet {
    fn drop(&mut self) {
        let hosts = std::mem::take(&mut self.hosts);
        if hosts.len() <= 1 {
            return;
        }
        std::thread::scope(|scope| {
            for host in hosts {
                scope.spawn(move || drop(host));
            }
        });
    }
}

/// Maps `f` over `items` on at most `forks` threads; results in order.
fn par_map<T: Sync, R: Send>(items: &[T], forks: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 || forks <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..forks.min(items.len()) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(k) else { break };
                let r = f(item);
                results.lock().expect("no worker panics while holding it")[k] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("workers are done")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Condvar};

    use hoist_transport::{Cmd, CommandLayer, LineSink, Output, TransportError};

    use super::*;

    /// A host's transport whose drop waits (at most 10 s) until every other host's transport
    /// is being dropped too, and counts the drops that met all the others.
    struct MeetsOnDrop {
        inner: Local,
        hosts: usize,
        dropping: Arc<(Mutex<usize>, Condvar)>,
        met: Arc<AtomicUsize>,
    }

    impl CommandLayer for MeetsOnDrop {
        fn inner(&self) -> &dyn Transport {
            &self.inner
        }

        fn layer_exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
            self.inner.exec(cmd)
        }

        fn layer_exec_streaming(
            &self,
            cmd: &Cmd,
            on_line: LineSink<'_>,
        ) -> Result<Output, TransportError> {
            self.inner.exec_streaming(cmd, on_line)
        }
    }

    impl Drop for MeetsOnDrop {
        fn drop(&mut self) {
            let (count, all_here) = &*self.dropping;
            let mut n = count.lock().unwrap();
            *n += 1;
            all_here.notify_all();
            let (n, _) = all_here
                .wait_timeout_while(n, Duration::from_secs(10), |n| *n < self.hosts)
                .unwrap();
            if *n == self.hosts {
                self.met.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn every_hosts_connection_closes_at_once() {
        let config = hoist_config::parse(
            Path::new("/srv/app/hoist.toml"),
            "[app]\nname = \"demo\"\nentry = \"app:app\"\n[release]\nroot = \"/srv/app\"\n",
        )
        .unwrap();
        let dropping = Arc::new((Mutex::new(0), Condvar::new()));
        let met = Arc::new(AtomicUsize::new(0));
        let hosts = 3;
        let fleet = Fleet {
            name: "test".into(),
            hosts: (0..hosts)
                .map(|i| Host {
                    transport: Box::new(MeetsOnDrop {
                        inner: Local::new(format!("web{i}")),
                        hosts,
                        dropping: dropping.clone(),
                        met: met.clone(),
                    }),
                    ..Host::local(&config)
                })
                .collect(),
            rollout: Rollout::All,
            forks: 1,
        };
        drop(fleet);
        assert_eq!(
            met.load(Ordering::SeqCst),
            hosts,
            "each host's close waited for the others"
        );
    }

    #[test]
    fn batches_follow_the_strategy() {
        assert_eq!(Rollout::All.batches(3), vec![vec![0, 1, 2]]);
        assert_eq!(
            Rollout::Rolling {
                batch: 2,
                pause: Duration::ZERO
            }
            .batches(5),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
        assert_eq!(Rollout::Canary.batches(3), vec![vec![0], vec![1, 2]]);
        assert_eq!(Rollout::Canary.batches(1), vec![vec![0]]);
    }
}
