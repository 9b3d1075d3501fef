//! [`MemoryCache`]: entries in memory, a byte limit, least-recently-used eviction. Like the
//! disk cache it keeps no user info and no credential values: keys and `Vary` credentials are
//! keyed hashes under a random key of the instance.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

use super::key_has_prefix;
use super::policy::StoredPolicy;
use super::{
    restore, vary_matches, vary_names, Cache, CacheFuture, CacheKey, CacheMetadata, CacheWriter,
    CachedBody, CachedEntry, EntryInfo, SecretKey, CREDENTIAL_HEADERS,
};

/// The default byte limit of a [`MemoryCache`]: 50 MiB.
pub const DEFAULT_MEMORY_CACHE_SIZE: u64 = 50 * 1024 * 1024;

/// A cache in memory with a byte limit (bodies plus an estimate of the headers); the least
/// recently used entries are evicted when a new one would exceed it. A response larger than the
/// limit is not stored.
#[derive(Clone)]
pub struct MemoryCache {
    inner: Arc<Mutex<Inner>>,
    secret: Arc<SecretKey>,
    shared: bool,
}

struct Inner {
    max: u64,
    size: u64,
    tick: u64,
    /// Primary key → variants, oldest stored first.
    entries: HashMap<String, Vec<Variant>>,
    /// Last use → (primary key, variant serial).
    lru: BTreeMap<u64, (String, u64)>,
}

struct Variant {
    serial: u64,
    last_used: u64,
    cost: u64,
    metadata: CacheMetadata,
    /// The rules of `metadata`, parsed once when stored.
    policy: Arc<StoredPolicy>,
    body: Bytes,
    stored_at: SystemTime,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new(DEFAULT_MEMORY_CACHE_SIZE)
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryCache")
            .field("size", &inner.size)
            .field("max_size", &inner.max)
            .finish()
    }
}

impl MemoryCache {
    /// An empty cache holding at most `max_size` bytes.
    pub fn new(max_size: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                max: max_size,
                size: 0,
                tick: 0,
                entries: HashMap::new(),
                lru: BTreeMap::new(),
            })),
            secret: Arc::new(SecretKey::generate()),
            shared: false,
        }
    }

    /// This cache as a shared one (`true`) or a private one (the default); see
    /// [`Cache::is_shared`].
    ///
    /// ```
    /// use netaccess::{Cache, MemoryCache};
    /// let gateway = MemoryCache::new(1 << 20).shared(true);
    /// assert!(gateway.is_shared());
    /// assert!(!MemoryCache::default().is_shared());
    /// ```
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// The byte limit.
    pub fn max_size(&self) -> u64 {
        self.lock().max
    }

    /// Changes the byte limit, evicting at once if needed.
    pub fn set_max_size(&self, max_size: u64) {
        let mut inner = self.lock();
        inner.max = max_size;
        inner.evict_to(max_size);
    }

    /// The number of stored entries (variants count separately).
    pub fn len(&self) -> usize {
        self.lock().lru.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing entries; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup_now(&self, key: &CacheKey, request_headers: &HeaderMap) -> Option<CachedEntry> {
        let text = self.secret.stored_key(key);
        // Only credential headers are sealed: without any, the request's headers are the probe.
        let sealed = CREDENTIAL_HEADERS
            .iter()
            .any(|h| request_headers.contains_key(h));
        let sealed_probe;
        let probe = if sealed {
            sealed_probe = self.secret.seal_headers(request_headers);
            &sealed_probe
        } else {
            request_headers
        };
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let Inner { entries, lru, .. } = &mut *inner;
        let variants = entries.get_mut(&text)?;
        let v = variants
            .iter_mut()
            .rev()
            .find(|v| vary_matches(&v.metadata.request_headers, &v.metadata.headers, probe))?;
        lru.remove(&v.last_used);
        v.last_used = tick;
        lru.insert(tick, (text, v.serial));
        let metadata = if sealed {
            restore(v.metadata.clone(), request_headers)
        } else {
            v.metadata.clone()
        };
        let entry = CachedEntry::new(
            metadata,
            CachedBody::from_bytes(v.body.clone()),
            v.stored_at,
        );
        Some(entry.with_policy(v.policy.clone()))
    }
}

impl Inner {
    /// Removes the variants of `key` that `keep` rejects.
    fn retain(&mut self, key: &str, mut keep: impl FnMut(&Variant) -> bool) -> bool {
        let Some(variants) = self.entries.get_mut(key) else {
            return false;
        };
        let before = variants.len();
        let mut freed = 0;
        variants.retain(|v| {
            let k = keep(v);
            if !k {
                freed += v.cost;
                self.lru.remove(&v.last_used);
            }
            k
        });
        let removed = variants.len() != before;
        if variants.is_empty() {
            self.entries.remove(key);
        }
        self.size -= freed;
        removed
    }

    fn evict_to(&mut self, limit: u64) {
        while self.size > limit {
            let Some((_, (key, serial))) = self.lru.pop_first() else {
                break;
            };
            self.retain(&key, |v| v.serial != serial);
        }
    }

    fn insert(&mut self, key: &str, metadata: CacheMetadata, body: Bytes) {
        let cost = body.len() as u64 + metadata.approximate_size() + key.len() as u64;
        // The same variant is replaced; a response without Vary replaces every variant.
        let names = metadata.vary();
        let same_variant = |v: &Variant| match &names {
            Some(names) if !names.is_empty() => {
                v.metadata.vary().as_ref() == Some(names)
                    && names.iter().all(|n| {
                        super::normalized_value(&v.metadata.request_headers, n)
                            == super::normalized_value(&metadata.request_headers, n)
                    })
            }
            _ => true,
        };
        self.retain(key, |v| !same_variant(v));
        if cost > self.max {
            return;
        }
        self.evict_to(self.max - cost);
        self.tick += 1;
        let tick = self.tick;
        self.lru.insert(tick, (key.to_owned(), tick));
        self.size += cost;
        let policy = Arc::new(StoredPolicy::new(&metadata));
        self.entries
            .entry(key.to_owned())
            .or_default()
            .push(Variant {
                serial: tick,
                last_used: tick,
                cost,
                metadata,
                policy,
                body,
                stored_at: SystemTime::now(),
            });
    }
}

struct MemoryWriter {
    cache: MemoryCache,
    key: String,
    metadata: Option<CacheMetadata>,
    body: BytesMut,
    too_large: bool,
}

impl CacheWriter for MemoryWriter {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.too_large {
            return Err(too_large());
        }
        if (self.body.len() + chunk.len()) as u64 > self.cache.max_size() {
            self.too_large = true;
            self.body = BytesMut::new();
            return Err(too_large());
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> CacheFuture<'static, io::Result<()>> {
        let result = match (self.too_large, self.metadata.take()) {
            (false, Some(metadata)) => {
                let body = std::mem::take(&mut self.body).freeze();
                self.cache.lock().insert(&self.key, metadata, body);
                Ok(())
            }
            _ => Err(too_large()),
        };
        Box::pin(std::future::ready(result))
    }
}

fn too_large() -> io::Error {
    io::Error::other("response larger than the cache")
}

impl Cache for MemoryCache {
    fn lookup<'a>(
        &'a self,
        key: &'a CacheKey,
        request_headers: &'a HeaderMap,
    ) -> CacheFuture<'a, Option<CachedEntry>> {
        let found = self.lookup_now(key, request_headers);
        Box::pin(std::future::ready(found))
    }

    fn begin_store(&self, key: &CacheKey, metadata: CacheMetadata) -> Box<dyn CacheWriter> {
        Box::new(MemoryWriter {
            cache: self.clone(),
            key: self.secret.stored_key(key),
            too_large: vary_names(&metadata.headers).is_none(),
            metadata: Some(self.secret.seal(&metadata)),
            body: BytesMut::new(),
        })
    }

    fn update_metadata<'a>(
        &'a self,
        key: &'a CacheKey,
        metadata: CacheMetadata,
    ) -> CacheFuture<'a, bool> {
        let text = self.secret.stored_key(key);
        let metadata = self.secret.seal(&metadata);
        let mut inner = self.lock();
        let Inner { entries, size, .. } = &mut *inner;
        let updated = entries.get_mut(&text).and_then(|variants| {
            variants
                .iter_mut()
                .rev()
                .find(|v| v.metadata.matches_request(&metadata.request_headers))
        });
        let found = match updated {
            Some(v) => {
                let cost = v.body.len() as u64 + metadata.approximate_size() + text.len() as u64;
                *size = *size - v.cost + cost;
                v.cost = cost;
                v.policy = Arc::new(StoredPolicy::new(&metadata));
                v.metadata = metadata;
                v.stored_at = SystemTime::now();
                true
            }
            None => false,
        };
        let max = inner.max;
        inner.evict_to(max);
        Box::pin(std::future::ready(found))
    }

    fn remove<'a>(&'a self, key: &'a CacheKey) -> CacheFuture<'a, bool> {
        let text = self.secret.stored_key(key);
        let removed = self.lock().retain(&text, |_| false);
        Box::pin(std::future::ready(removed))
    }

    fn clear(&self) -> CacheFuture<'_, ()> {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.lru.clear();
        inner.size = 0;
        Box::pin(std::future::ready(()))
    }

    fn size(&self) -> u64 {
        self.lock().size
    }

    fn is_shared(&self) -> bool {
        self.shared
    }

    fn entries(&self) -> CacheFuture<'_, Vec<EntryInfo>> {
        let inner = self.lock();
        let list = inner
            .entries
            .iter()
            .flat_map(|(key, variants)| {
                variants.iter().map(move |v| {
                    EntryInfo::new(key, v.metadata.clone(), v.body.len() as u64, v.stored_at)
                })
            })
            .collect();
        Box::pin(std::future::ready(list))
    }

    fn remove_prefix<'a>(&'a self, url_prefix: &'a str) -> CacheFuture<'a, u64> {
        let mut inner = self.lock();
        let keys: Vec<String> = inner
            .entries
            .keys()
            .filter(|k| key_has_prefix(k, url_prefix))
            .cloned()
            .collect();
        let mut removed = 0;
        for key in keys {
            removed += inner.entries.get(&key).map_or(0, Vec::len) as u64;
            inner.retain(&key, |_| false);
        }
        Box::pin(std::future::ready(removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, StatusCode};
    use url::Url;

    fn key(path: &str) -> CacheKey {
        CacheKey::get(&Url::parse(&format!("http://h{path}")).unwrap())
    }

    fn meta(vary: Option<(&str, &str)>) -> CacheMetadata {
        let mut res = HeaderMap::new();
        let mut req = HeaderMap::new();
        if let Some((name, value)) = vary {
            res.insert("vary", HeaderValue::from_str(name).unwrap());
            req.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let now = SystemTime::now();
        CacheMetadata::new(StatusCode::OK, &res, &req, now, now)
    }

    fn block<T>(f: CacheFuture<'_, T>) -> T {
        futures_util::FutureExt::now_or_never(f).expect("memory cache futures are ready")
    }

    fn store(cache: &MemoryCache, k: &CacheKey, m: CacheMetadata, body: &[u8]) {
        let mut w = cache.begin_store(k, m);
        w.write(body).unwrap();
        block(w.commit()).unwrap();
    }

    fn body(cache: &MemoryCache, k: &CacheKey, req: &HeaderMap) -> Option<Bytes> {
        block(cache.lookup(k, req)).map(|e| e.body.as_bytes().unwrap().clone())
    }

    #[test]
    fn lru_eviction() {
        let cost = 1000 + meta(None).approximate_size() + key("/0").as_str().len() as u64;
        let cache = MemoryCache::new(3 * cost);
        let none = HeaderMap::new();
        for i in 0..3 {
            store(&cache, &key(&format!("/{i}")), meta(None), &[i as u8; 1000]);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.size(), 3 * cost);
        // Use /0: /1 is now the least recently used.
        assert!(body(&cache, &key("/0"), &none).is_some());
        store(&cache, &key("/3"), meta(None), &[3; 1000]);
        assert_eq!(cache.len(), 3);
        assert!(body(&cache, &key("/1"), &none).is_none());
        for i in [0, 2, 3] {
            assert_eq!(
                body(&cache, &key(&format!("/{i}")), &none).unwrap()[0],
                i as u8
            );
        }
        assert!(cache.size() <= cache.max_size());
        // Too large for the cache: not stored, nothing evicted.
        let mut w = cache.begin_store(&key("/big"), meta(None));
        assert!(w.write(&vec![0; 4 * cost as usize]).is_err());
        assert!(block(w.commit()).is_err());
        assert_eq!(cache.len(), 3);
        cache.set_max_size(cost);
        assert_eq!(cache.len(), 1);
        assert!(block(cache.remove(&key("/3"))));
        assert!(cache.is_empty());
        assert_eq!(cache.size(), 0);
    }

    #[test]
    fn a_lookup_returns_the_rules_parsed_when_stored() {
        let cache = MemoryCache::default();
        let mut m = meta(None);
        m.headers
            .insert("cache-control", HeaderValue::from_static("max-age=60"));
        store(&cache, &key("/p"), m, b"x");
        let entry = block(cache.lookup(&key("/p"), &HeaderMap::new())).unwrap();
        let kept = entry.policy.clone().expect("kept with the entry");
        assert_eq!(kept.freshness_lifetime(false).as_secs(), 60);
        let again = block(cache.lookup(&key("/p"), &HeaderMap::new())).unwrap();
        assert!(
            Arc::ptr_eq(&kept, again.policy.as_ref().unwrap()),
            "not parsed again"
        );
    }

    #[test]
    fn aborted_writer_stores_nothing() {
        let cache = MemoryCache::default();
        let mut w = cache.begin_store(&key("/a"), meta(None));
        w.write(b"partial").unwrap();
        drop(w);
        assert!(cache.is_empty());
        assert!(body(&cache, &key("/a"), &HeaderMap::new()).is_none());
    }

    #[test]
    fn vary_keeps_two_variants() {
        let cache = MemoryCache::default();
        let k = key("/v");
        let en = meta(Some(("accept-language", "en")));
        let de = meta(Some(("accept-language", "de")));
        store(&cache, &k, en.clone(), b"hello");
        store(&cache, &k, de.clone(), b"hallo");
        assert_eq!(cache.len(), 2);
        assert_eq!(
            &body(&cache, &k, &en.request_headers).unwrap()[..],
            b"hello"
        );
        assert_eq!(
            &body(&cache, &k, &de.request_headers).unwrap()[..],
            b"hallo"
        );
        assert!(body(&cache, &k, &HeaderMap::new()).is_none());
        // The same variant again replaces it.
        store(&cache, &k, en.clone(), b"hi");
        assert_eq!(cache.len(), 2);
        assert_eq!(&body(&cache, &k, &en.request_headers).unwrap()[..], b"hi");
        // update_metadata touches only the selected variant.
        let mut en2 = en.clone();
        en2.headers
            .insert("etag", HeaderValue::from_static("\"2\""));
        assert!(block(cache.update_metadata(&k, en2.clone())));
        let e = block(cache.lookup(&k, &en.request_headers)).unwrap();
        assert_eq!(e.metadata, en2);
        let d = block(cache.lookup(&k, &de.request_headers)).unwrap();
        assert_eq!(d.metadata, de);
        // A response without Vary replaces all variants.
        store(&cache, &k, meta(None), b"plain");
        assert_eq!(cache.len(), 1);
        assert!(block(cache.remove(&k)));
        assert!(!block(cache.remove(&k)));
        block(cache.clear());
    }
}
