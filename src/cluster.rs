//! The distributed backends, built from `[cluster]`: Redis Streams queue, Redis sessions,
//! etcd registry, tarpc over TCP.

use crate::{Error, ServerBuilder};
use gochat_core::TcpTransport;
use gochat_core::queue::{RedisQueue, RedisQueueConfig};
use gochat_core::registry::{EtcdRegistry, EtcdRegistryConfig};
use gochat_core::sessions::{RedisSessions, RedisSessionsConfig};
use std::sync::Arc;

impl ServerBuilder {
    /// Swap every shared backend for its distributed one, as `config.cluster` describes
    /// (call after [`config`](Self::config)): layers in other processes then see the same
    /// queue, sessions and registry, and are reached over TCP.
    /// Only what the chosen [`layers`](Self::layers) use is connected (so call `layers`
    /// first): the queue and sessions for logic and task, the registry for all.
    pub async fn distributed(mut self) -> Result<Self, Error> {
        let c = self.config.cluster.clone();
        let (logic, task) = (self.layers.logic, self.layers.task);
        if logic || task {
            let queue = RedisQueue::connect(RedisQueueConfig {
                url: c.redis_url.clone(),
                stream: format!("{}deliveries", c.redis_prefix),
                group: "task".into(),
                capacity: self.config.queue.capacity,
                claim_idle: self.config.queue.claim_idle(),
                ..RedisQueueConfig::default()
            })
            .await?;
            let sessions = RedisSessions::connect(RedisSessionsConfig {
                url: c.redis_url.clone(),
                prefix: c.redis_prefix.clone(),
            })
            .await?;
            self = self.queue(Arc::new(queue)).sessions(Arc::new(sessions));
        }
        let registry = EtcdRegistry::connect(EtcdRegistryConfig {
            endpoints: c.etcd_endpoints.clone(),
            prefix: c.etcd_prefix.clone(),
            lease_ttl: c.lease_ttl(),
        })
        .await?;
        Ok(self
            .registry(Arc::new(registry))
            .transport(Arc::new(TcpTransport::new(c.advertise_host))))
    }
}
