//! Reading an identity provider's JSON Web Key Set into the keys the gateway will trust.
//!
//! Each key is judged on its own, so one bad key does not take the good ones down with it: a
//! key is refused (with a reason for the log) when it is symmetric (`kty: oct` — a published
//! secret would let anyone sign), an RSA key under 2048 bits, an EC key on a curve its `alg`
//! does not name, marked for encryption (`use: enc`), of an algorithm the issuer does not allow
//! (`alg: none` included), or shares its `kid` with another key (which one signed would be a
//! guess). The algorithm a key verifies comes from the key and the issuer's configuration,
//! never from a token's header.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Most keys read from one set (a provider publishes a handful).
pub const MAX_KEYS: usize = 64;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// One trusted key: what it verifies and with which algorithms.
#[derive(Clone)]
pub struct TrustedKey {
    /// The decoding key.
    pub key: DecodingKey,
    /// The algorithms a token signed with this key may name.
    pub algorithms: Vec<Algorithm>,
}

/// The keys of one issuer, by `kid`; a set of exactly one key also serves tokens without a
/// `kid`.
#[derive(Clone, Default)]
pub struct KeySet {
    /// Keys by `kid`.
    pub by_kid: HashMap<String, TrustedKey>,
    /// The only key, when the set has one.
    pub only: Option<TrustedKey>,
}

impl KeySet {
    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.by_kid.len().max(usize::from(self.only.is_some()))
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key for a token's `kid` (or the only key, for a token without one).
    pub fn find(&self, kid: Option<&str>) -> Option<&TrustedKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => self.only.as_ref(),
        }
    }
}

/// A key that was not trusted, and why (for the log; no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The key's `kid`, cut to 64 characters, or its position.
    pub key: String,
    /// Why.
    pub why: &'static str,
}

fn algorithm_of(alg: &KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn rsa_bits(n: &str) -> usize {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).unwrap_or_default();
    let significant = bytes.iter().skip_while(|b| **b == 0).count();
    let leading = bytes.iter().find(|b| **b != 0).map_or(0, |b| b.leading_zeros() as usize);
    (significant * 8).saturating_sub(leading)
}

/// The algorithms one key may verify, allowed by `allowed`, or why it is refused.
fn judge(jwk: &Jwk, allowed: &[Algorithm]) -> Result<Vec<Algorithm>, &'static str> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key (use: enc)");
    }
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric key (kty: oct) published as a public key"),
        AlgorithmParameters::RSA(rsa) => {
            if rsa_bits(&rsa.n) < MIN_RSA_BITS {
                return Err("an RSA key under 2048 bits");
            }
            crate::config::providers::RSA_ALGORITHMS.to_vec()
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("an EC key on an unsupported curve"),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => return Err("an OKP key on an unsupported curve"),
        },
        _ => return Err("an unsupported key type"),
    };
    let named = match &jwk.common.key_algorithm {
        None => family,
        Some(alg) => {
            let alg = algorithm_of(alg).ok_or("a key for an algorithm that does not sign tokens")?;
            if !family.contains(&alg) {
                return Err("a key whose alg does not match its type or curve");
            }
            vec![alg]
        }
    };
    let usable: Vec<Algorithm> = named.into_iter().filter(|a| allowed.contains(a)).collect();
    if usable.is_empty() {
        return Err("a key for an algorithm this issuer does not allow");
    }
    Ok(usable)
}

/// Read a key set (`{"keys": [...]}`): the trusted keys, and the refused ones with reasons.
/// `Err` when the document is not a key set at all, or trusts no key.
pub fn read(document: &[u8], allowed: &[Algorithm]) -> Result<(KeySet, Vec<Refused>), String> {
    let doc: Value = serde_json::from_slice(document).map_err(|_| "the key set is not JSON".to_owned())?;
    let keys = doc.get("keys").and_then(Value::as_array).ok_or("the key set has no keys array")?;
    let mut refused = Vec::new();
    let mut trusted: Vec<(Option<String>, TrustedKey)> = Vec::new();
    for (i, raw) in keys.iter().take(MAX_KEYS).enumerate() {
        let label = raw
            .get("kid")
            .and_then(Value::as_str)
            .map(|k| k.chars().filter(|c| !c.is_control()).take(64).collect())
            .unwrap_or_else(|| format!("keys[{i}]"));
        if raw.get("alg").and_then(Value::as_str).is_some_and(|a| a.eq_ignore_ascii_case("none")) {
            refused.push(Refused { key: label, why: "alg: none" });
            continue;
        }
        let jwk: Jwk = match serde_json::from_value(raw.clone()) {
            Ok(jwk) => jwk,
            Err(_) => {
                refused.push(Refused { key: label, why: "not a key this gateway can read" });
                continue;
            }
        };
        let algorithms = match judge(&jwk, allowed) {
            Ok(a) => a,
            Err(why) => {
                refused.push(Refused { key: label, why });
                continue;
            }
        };
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => trusted.push((jwk.common.key_id.clone(), TrustedKey { key, algorithms })),
            Err(_) => refused.push(Refused { key: label, why: "key parameters that do not form a key" }),
        }
    }
    if keys.len() > MAX_KEYS {
        refused.push(Refused { key: format!("keys[{MAX_KEYS}..]"), why: "more keys than the gateway reads" });
    }
    let mut set = KeySet::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (kid, _) in &trusted {
        if let Some(kid) = kid {
            *seen.entry(kid.clone()).or_default() += 1;
        }
    }
    let count = trusted.len();
    for (kid, key) in trusted {
        match kid {
            Some(kid) if seen.get(&kid).copied().unwrap_or(0) > 1 => {
                refused.push(Refused { key: kid.chars().take(64).collect(), why: "a kid shared by several keys" });
            }
            Some(kid) => {
                if count == 1 {
                    set.only = Some(key.clone());
                }
                set.by_kid.insert(kid, key);
            }
            None if count == 1 => set.only = Some(key),
            None => refused.push(Refused { key: "(no kid)".into(), why: "a key without kid in a set of several" }),
        }
    }
    if set.is_empty() {
        return Err(format!("no usable key in the set ({} refused)", refused.len()));
    }
    Ok((set, refused))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    fn rsa(kid: &str, bits: usize) -> Value {
        use base64::Engine;
        let mut n = vec![0xC1u8];
        n.resize(bits / 8, 0x55);
        json!({ "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
            "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&n), "e": "AQAB" })
    }

    #[test]
    fn bad_keys_are_refused_one_by_one() {
        let ec_wrong_curve = json!({ "kty": "EC", "kid": "ec", "alg": "ES256", "crv": "P-384",
            "x": "AAAA", "y": "AAAA" });
        let doc = json!({ "keys": [
            rsa("good", 2048),
            rsa("small", 1024),
            { "kty": "oct", "kid": "secret", "k": "c2VjcmV0" },
            { "kty": "RSA", "kid": "none", "alg": "none", "n": "AQAB", "e": "AQAB" },
            ec_wrong_curve,
            rsa("dup", 2048),
            rsa("dup", 2048),
            { "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" },
        ]});
        let (set, refused) = read(doc.to_string().as_bytes(), &ALL).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.find(Some("good")).is_some());
        assert!(set.find(None).is_none(), "several keys: a token must name its kid");
        let why = |k: &str| refused.iter().find(|r| r.key == k).map(|r| r.why).unwrap_or("trusted");
        assert_eq!(why("small"), "an RSA key under 2048 bits");
        assert_eq!(why("secret"), "a symmetric key (kty: oct) published as a public key");
        assert_eq!(why("none"), "alg: none");
        assert_eq!(why("ec"), "a key whose alg does not match its type or curve");
        assert_eq!(why("dup"), "a kid shared by several keys");
        assert_eq!(why("enc"), "an encryption key (use: enc)");
    }

    #[test]
    fn algorithms_come_from_the_key_and_the_configuration() {
        let doc = json!({ "keys": [rsa("k", 2048)] });
        assert!(read(doc.to_string().as_bytes(), &[Algorithm::ES256]).is_err(), "RS256 not allowed");
        let (set, _) = read(doc.to_string().as_bytes(), &ALL).unwrap();
        assert_eq!(set.find(None).unwrap().algorithms, vec![Algorithm::RS256]);
        assert!(read(b"{}", &ALL).is_err());
        assert!(read(b"not json", &ALL).is_err());
    }
}
