//! The ROCA fingerprint (CVE-2017-15361, Nemec et al., CCS 2017).
//!
//! Infineon's RSALib built primes as `k * M + (65537^a mod M)`, with `M` the
//! product of the first primes, so that for every small prime `r` dividing `M`
//! the modulus `n = p * q` is, mod `r`, a power of 65537. Such moduli can be
//! factored. `M` contains every prime up to 167 for all key sizes, so testing
//! those primes finds the weak keys; a random modulus passes all 38 tests with
//! negligible probability. This is the paper's published test, written from its
//! description (no code copied). Wycheproof's `jws_rsa_roca_key` vector is one.

/// The odd primes up to 167 (2 is useless: 65537 generates nothing mod 2).
const SMALL_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// True when the big-endian modulus `n` has the ROCA structure.
pub(crate) fn has_roca_fingerprint(n: &[u8]) -> bool {
    SMALL_PRIMES.iter().all(|&prime| {
        let residue = n
            .iter()
            .fold(0u32, |acc, &byte| (acc * 256 + u32::from(byte)) % prime);
        is_power_of_65537(residue, prime)
    })
}

/// Whether `residue` lies in the subgroup of (Z/prime)* that 65537 generates.
fn is_power_of_65537(residue: u32, prime: u32) -> bool {
    let generator = 65537 % prime;
    let mut power = 1u32;
    // The subgroup has at most prime - 1 elements; the loop ends when the powers
    // cycle back to 1.
    for _ in 0..prime {
        if power == residue {
            return true;
        }
        power = power * generator % prime;
        if power == 1 {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    /// The modulus of Wycheproof's `kid-rsa-roca-sign` key (json_web_key_test.json).
    const ROCA_MODULUS: &str = "AanFpofbj7KjD4Lf-N2hVMKR7yewSyXhhbirIMTGpfYEhZ_lnt5UoK98DnKIgArXGTu3MaW_HhFw16HGaTDUHqPrId7fe4r11CqRw09yBFuW79V8sYIwHdzCaWflUI6auImYbVfoN9_nD5n8N8SY9DwXw7mwZM9wREPXoDPgOoIWl6q_MPsp7n0zs3Z5ZaiQWOOzl1S9OhwAfSiiOwz6efnXEaxuTEtPd7BjSx7NaFka8Dx9U7YqXy2RFj1O9PjyaDGuRh7YXsX3iMUSP_wSyHQg_c_qHRtKUsNSGCT7OZg0hzm2KphtjnayKJvC64vAbROBR4Ubg6Bxg9IQVZ-QYyE";

    /// The modulus of RFC 7520's example RSA key (an ordinary key).
    const RFC7520_MODULUS: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";

    fn decode(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("test modulus")
    }

    #[test]
    fn detects_the_wycheproof_roca_key() {
        assert!(has_roca_fingerprint(&decode(ROCA_MODULUS)));
    }

    #[test]
    fn passes_an_ordinary_key() {
        assert!(!has_roca_fingerprint(&decode(RFC7520_MODULUS)));
        assert!(!has_roca_fingerprint(&[]));
    }

    #[test]
    fn subgroup_membership_matches_brute_force() {
        for &prime in &SMALL_PRIMES {
            let mut powers = vec![false; prime as usize];
            let mut x = 1u64;
            for _ in 0..prime {
                powers[x as usize] = true;
                x = x * 65537 % u64::from(prime);
            }
            for residue in 0..prime {
                assert_eq!(
                    is_power_of_65537(residue, prime),
                    powers[residue as usize],
                    "{residue} mod {prime}"
                );
            }
        }
    }
}
