//! The newest version of each model, kept in memory so that the forecast
//! path does not ask the database, and kept exact around registrations: the
//! one mechanism both stores use.
//!
//! A registration marks its model *unsure* before its insert starts: from the
//! moment the insert commits, other readers of the database see the new
//! version, before this process can note it here, so readers of an unsure
//! model go to the database, for as long as any registration of the model is
//! under way (PostgreSQL runs several at once). The registration then notes
//! its version (or says it inserted nothing). A registration dropped
//! half-way (its caller was cancelled) leaves its model *stale*, since its
//! insert may have committed, until a later registration of that model
//! completes (registrations of a model take turns in the database, so the
//! later one's version is the newer).
//!
//! SQLite (one process owns the database) knows every model from the start:
//! a model it does not hold has no version. PostgreSQL (several processes)
//! learns versions as they are read or announced by notifications, and only
//! while its `LISTEN` connection is up: losing it forgets everything, and an
//! epoch keeps a read that started before the loss from filling the cache.

use protocol::{ModelName, Version};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

/// What the cache knows of a model's newest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Newest {
    /// Exactly this (`None`: the model has no version).
    Known(Option<Version>),
    /// Ask the database.
    Unknown,
}

#[derive(Debug)]
pub(crate) struct NewestVersions {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    versions: HashMap<ModelName, Version>,
    /// Registrations under way, by model.
    unsure: HashMap<ModelName, usize>,
    /// Models whose registration was dropped half-way.
    stale: HashSet<ModelName>,
    /// Every model with a version is in `versions` (or unsure).
    complete: bool,
    /// Whether the cache may answer at all.
    trusted: bool,
    epoch: u64,
}

impl NewestVersions {
    /// A cache that knows every model (the database's only writer is this
    /// process): `versions` holds the newest version of each.
    pub(crate) fn complete(versions: HashMap<ModelName, Version>) -> Self {
        Self::with(versions, true, true)
    }

    /// A cache that learns versions as they are read or announced; it
    /// answers nothing until [`Self::trust`] is called.
    pub(crate) fn partial() -> Self {
        Self::with(HashMap::new(), false, false)
    }

    fn with(versions: HashMap<ModelName, Version>, complete: bool, trusted: bool) -> Self {
        Self {
            inner: Mutex::new(Inner {
                versions,
                unsure: HashMap::new(),
                stale: HashSet::new(),
                complete,
                trusted,
                epoch: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, model: &ModelName) -> Newest {
        let inner = self.lock();
        if !inner.trusted || inner.is_unsure(model) {
            return Newest::Unknown;
        }
        match inner.versions.get(model) {
            Some(v) => Newest::Known(Some(*v)),
            None if inner.complete => Newest::Known(None),
            None => Newest::Unknown,
        }
    }

    /// A version seen committed (announced by a notification, or read).
    pub(crate) fn note(&self, model: &ModelName, version: Version) {
        let mut inner = self.lock();
        if inner.trusted {
            raise(&mut inner.versions, model, version);
        }
    }

    /// The model was deleted: it has no version now (a complete cache), or
    /// ask the database (a partial one).
    pub(crate) fn forget(&self, model: &ModelName) {
        self.lock().versions.remove(model);
    }

    /// The current epoch, to pass to [`Self::fill`] after a database read.
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Keeps what the database said, if trust was not lost since `epoch`
    /// and no registration of the model is under way.
    pub(crate) fn fill(&self, model: &ModelName, version: Version, epoch: u64) {
        let mut inner = self.lock();
        if inner.trusted && inner.epoch == epoch && !inner.is_unsure(model) {
            raise(&mut inner.versions, model, version);
        }
    }

    /// The cache may answer (`true`), or must forget and not answer.
    pub(crate) fn trust(&self, trusted: bool) {
        let mut inner = self.lock();
        if !trusted {
            inner.versions.clear();
            inner.epoch += 1;
        }
        inner.trusted = trusted;
    }

    /// Marks `model` unsure for the registration that is about to insert.
    pub(crate) fn register<'a>(&'a self, model: &'a ModelName) -> Registration<'a> {
        *self.lock().unsure.entry(model.clone()).or_insert(0) += 1;
        Registration {
            cache: Some(self),
            model,
        }
    }

    #[cfg(test)]
    pub(crate) fn is_unsure(&self, model: &ModelName) -> bool {
        self.lock().is_unsure(model)
    }
}

impl Inner {
    fn is_unsure(&self, model: &ModelName) -> bool {
        self.unsure.contains_key(model) || self.stale.contains(model)
    }

    /// One registration of `model` is no longer under way.
    fn finish(&mut self, model: &ModelName) {
        if let Some(n) = self.unsure.get_mut(model) {
            *n -= 1;
            if *n == 0 {
                self.unsure.remove(model);
            }
        }
    }
}

fn raise(versions: &mut HashMap<ModelName, Version>, model: &ModelName, version: Version) {
    let newest = versions.entry(model.clone()).or_insert(version);
    *newest = (*newest).max(version);
}

/// A registration under way (see [`NewestVersions::register`]).
pub(crate) struct Registration<'a> {
    cache: Option<&'a NewestVersions>,
    model: &'a ModelName,
}

impl Registration<'_> {
    /// The insert committed `version`: it is the model's newest.
    pub(crate) fn done(mut self, version: Version) {
        if let Some(cache) = self.cache.take() {
            let mut inner = cache.lock();
            inner.finish(self.model);
            inner.stale.remove(self.model);
            if inner.trusted {
                raise(&mut inner.versions, self.model, version);
            }
        }
    }

    /// Nothing was inserted: the cache is as trustworthy as before.
    pub(crate) fn nothing(mut self) {
        if let Some(cache) = self.cache.take() {
            cache.lock().finish(self.model);
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some(cache) = self.cache {
            let mut inner = cache.lock();
            inner.finish(self.model);
            inner.stale.insert(self.model.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ModelName {
        ModelName::parse(s).unwrap()
    }

    #[test]
    fn a_complete_cache_knows_models_without_versions() {
        let cache = NewestVersions::complete(HashMap::from([(name("a"), 2)]));
        assert_eq!(cache.get(&name("a")), Newest::Known(Some(2)));
        assert_eq!(cache.get(&name("b")), Newest::Known(None));
    }

    #[test]
    fn registrations_send_readers_to_the_database_until_they_end() {
        let cache = NewestVersions::complete(HashMap::from([(name("a"), 2)]));
        let a = name("a");
        let r = cache.register(&a);
        assert_eq!(cache.get(&a), Newest::Unknown);
        r.done(3);
        assert_eq!(cache.get(&a), Newest::Known(Some(3)));
        cache.register(&a).nothing();
        assert_eq!(cache.get(&a), Newest::Known(Some(3)));
        // Dropped half-way: unsure until a later registration completes.
        drop(cache.register(&a));
        assert_eq!(cache.get(&a), Newest::Unknown);
        cache.register(&a).nothing();
        assert_eq!(
            cache.get(&a),
            Newest::Unknown,
            "nothing proves the drop harmless"
        );
        cache.register(&a).done(4);
        assert_eq!(cache.get(&a), Newest::Known(Some(4)));
    }

    #[test]
    fn one_registration_ending_leaves_the_model_unsure_while_another_runs() {
        let cache = NewestVersions::complete(HashMap::from([(name("a"), 6)]));
        let a = name("a");
        let (r7, r8) = (cache.register(&a), cache.register(&a));
        r7.done(7);
        // Version 8 may have committed already: the database answers.
        assert_eq!(cache.get(&a), Newest::Unknown);
        r8.done(8);
        assert_eq!(cache.get(&a), Newest::Known(Some(8)));
    }

    #[test]
    fn a_partial_cache_answers_only_while_trusted_and_forgets_on_loss() {
        let cache = NewestVersions::partial();
        let a = name("a");
        cache.note(&a, 1);
        assert_eq!(cache.get(&a), Newest::Unknown, "not trusted yet");
        cache.trust(true);
        assert_eq!(cache.get(&a), Newest::Unknown, "never seen");
        let epoch = cache.epoch();
        cache.fill(&a, 2, epoch);
        cache.note(&a, 1);
        assert_eq!(cache.get(&a), Newest::Known(Some(2)), "only raised");
        // A read from before a lost connection does not fill the cache.
        let stale = cache.epoch();
        cache.trust(false);
        cache.trust(true);
        cache.fill(&a, 5, stale);
        assert_eq!(cache.get(&a), Newest::Unknown);
        // Nor does a read that races a registration of the model.
        let r = cache.register(&a);
        cache.fill(&a, 5, cache.epoch());
        r.done(6);
        assert_eq!(cache.get(&a), Newest::Known(Some(6)));
    }
}
