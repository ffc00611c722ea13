//! [`Policy`]: which identities may call which methods; everything not
//! allowed is denied.

use std::collections::{HashMap, HashSet};

/// Who a rule lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// Anyone, authenticated or not (health checks, reflection).
    Anyone,
    /// Any authenticated identity.
    Authenticated,
    /// Only these principals.
    Principals(HashSet<String>),
}

/// A per-method authorization policy with default deny.
///
/// Rules name a method (`/package.Service/Method`), a whole service
/// (`/package.Service/*`) or every method (`*`); the most specific rule for a
/// method decides, and a method no rule names is denied.
///
/// ```
/// use plexus_rpc::auth::Policy;
///
/// let policy = Policy::default_deny()
///     .allow("/shop.orders.v1.Orders/PlaceOrder", ["spiffe://shop/gateway"])
///     .allow_authenticated("/shop.orders.v1.Orders/*")
///     .allow_anyone("/grpc.health.v1.Health/*");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policy {
    methods: HashMap<String, Allowed>,
    services: HashMap<String, Allowed>,
    everything: Option<Allowed>,
}

/// What a policy decides for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    /// An identity is needed and none was presented.
    NeedsIdentity,
    /// The identity (or, with `None`, anyone) may not call this method.
    Deny {
        rule_exists: bool,
    },
}

impl Policy {
    /// A policy that allows nothing until rules are added.
    pub fn default_deny() -> Self {
        Policy::default()
    }

    /// Lets these principals call the method(s) matched by `pattern`.
    pub fn allow<I, P>(self, pattern: &str, principals: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        let set = principals.into_iter().map(Into::into).collect();
        self.rule(pattern, Allowed::Principals(set))
    }

    /// Lets any authenticated identity call the method(s) matched by `pattern`.
    pub fn allow_authenticated(self, pattern: &str) -> Self {
        self.rule(pattern, Allowed::Authenticated)
    }

    /// Lets anyone, even unauthenticated, call the method(s) matched by `pattern`.
    pub fn allow_anyone(self, pattern: &str) -> Self {
        self.rule(pattern, Allowed::Anyone)
    }

    fn rule(mut self, pattern: &str, allowed: Allowed) -> Self {
        if pattern == "*" {
            self.everything = Some(allowed);
        } else if let Some(service) = pattern.strip_suffix("/*") {
            self.services.insert(service.to_owned(), allowed);
        } else {
            self.methods.insert(pattern.to_owned(), allowed);
        }
        self
    }

    fn lookup(&self, path: &str) -> Option<&Allowed> {
        if let Some(rule) = self.methods.get(path) {
            return Some(rule);
        }
        let service = path.rsplit_once('/').map(|(s, _)| s).unwrap_or(path);
        self.services.get(service).or(self.everything.as_ref())
    }

    pub(crate) fn decide(&self, path: &str, principal: Option<&str>) -> Decision {
        match (self.lookup(path), principal) {
            (None, _) => Decision::Deny { rule_exists: false },
            (Some(Allowed::Anyone), _) => Decision::Allow,
            (Some(_), None) => Decision::NeedsIdentity,
            (Some(Allowed::Authenticated), Some(_)) => Decision::Allow,
            (Some(Allowed::Principals(set)), Some(p)) if set.contains(p) => Decision::Allow,
            (Some(Allowed::Principals(_)), Some(_)) => Decision::Deny { rule_exists: true },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACE: &str = "/shop.orders.v1.Orders/PlaceOrder";
    const WATCH: &str = "/shop.orders.v1.Orders/WatchOrder";

    fn policy() -> Policy {
        Policy::default_deny()
            .allow(PLACE, ["spiffe://shop/gateway"])
            .allow_authenticated("/shop.orders.v1.Orders/*")
            .allow_anyone("/grpc.health.v1.Health/*")
    }

    #[test]
    fn most_specific_rule_decides() {
        let p = policy();
        assert_eq!(
            p.decide(PLACE, Some("spiffe://shop/gateway")),
            Decision::Allow
        );
        assert_eq!(
            p.decide(PLACE, Some("spiffe://shop/cli")),
            Decision::Deny { rule_exists: true }
        );
        assert_eq!(p.decide(WATCH, Some("spiffe://shop/cli")), Decision::Allow);
        assert_eq!(p.decide(WATCH, None), Decision::NeedsIdentity);
        assert_eq!(
            p.decide("/grpc.health.v1.Health/Check", None),
            Decision::Allow
        );
    }

    #[test]
    fn unlisted_methods_are_denied() {
        let p = policy();
        assert_eq!(
            p.decide(
                "/shop.support.v1.Support/Chat",
                Some("spiffe://shop/gateway")
            ),
            Decision::Deny { rule_exists: false }
        );
        assert_eq!(
            Policy::default_deny().decide(PLACE, None),
            Decision::Deny { rule_exists: false }
        );
    }

    #[test]
    fn catch_all_rule_applies_last() {
        let p = policy().allow_authenticated("*");
        assert_eq!(p.decide("/x.Y/Z", Some("anyone")), Decision::Allow);
        assert_eq!(
            p.decide(PLACE, Some("spiffe://shop/cli")),
            Decision::Deny { rule_exists: true }
        );
    }
}
