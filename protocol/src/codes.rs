//! Code lists the schema validates against: ISO 3166-1 alpha-2 countries, ISO 3166-2
//! subdivision syntax, ISO 4217 currencies, and the EU member states.
//!
//! The lists are the officially assigned codes (ISO 3166 Maintenance Agency, ISO 4217
//! amendment 179); user-assigned and reserved codes are refused so typos do not slip through.

/// ISO 3166-1 alpha-2, officially assigned, sorted.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// ISO 4217 alphabetic codes in circulation or fund codes, sorted.
const CURRENCIES: [&str; 177] = [
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD",
    "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF",
    "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP",
    "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR",
    "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP",
    "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR",
    "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB",
    "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN",
    "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH",
    "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF",
    "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT",
    "XSU", "XTS", "XUA", "XXX", "YER", "ZAR", "ZMW", "ZWG",
];

/// The 27 EU member states, sorted.
const EU_MEMBERS: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 country code (upper case).
pub fn is_country(code: &str) -> bool {
    COUNTRIES.binary_search(&code).is_ok()
}

/// Whether `code` is an ISO 4217 currency code (upper case).
pub fn is_currency(code: &str) -> bool {
    CURRENCIES.binary_search(&code).is_ok()
}

/// Whether `country` is an EU member state.
pub fn is_eu_member(country: &str) -> bool {
    EU_MEMBERS.binary_search(&country).is_ok()
}

/// Why a code is not an ISO 3166-2 subdivision (of the expected country).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubdivisionError {
    /// Not `CC-XXX`.
    #[error("{0:?} is not an ISO 3166-2 code (expected CC-XXX)")]
    Syntax(String),
    /// The country part is not an assigned country code.
    #[error("{code:?}: {country:?} is not an ISO 3166-1 country code")]
    Country {
        /// The code.
        code: String,
        /// Its country part.
        country: String,
    },
    /// A subdivision of another country.
    #[error("{code:?} is not a subdivision of {expected}")]
    OtherCountry {
        /// The code.
        code: String,
        /// The country it should belong to.
        expected: String,
    },
}

/// Checks the syntax of an ISO 3166-2 subdivision code (`DE-BY`, `FR-75C`, `ES-M`) and that
/// it belongs to `country`. The country part must be an assigned code; the subdivision part
/// is one to three upper-case letters or digits.
pub fn check_subdivision(code: &str, country: Option<&str>) -> Result<(), SubdivisionError> {
    let Some((cc, sub)) = code.split_once('-') else {
        return Err(SubdivisionError::Syntax(code.to_owned()));
    };
    if !is_country(cc) {
        return Err(SubdivisionError::Country {
            code: code.to_owned(),
            country: cc.to_owned(),
        });
    }
    let ok_sub = (1..=3).contains(&sub.len())
        && sub
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !ok_sub {
        return Err(SubdivisionError::Syntax(code.to_owned()));
    }
    match country {
        Some(c) if c != cc => Err(SubdivisionError::OtherCountry {
            code: code.to_owned(),
            expected: c.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_for_binary_search() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(EU_MEMBERS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn recognises_codes() {
        assert!(is_country("DE") && is_country("FR") && !is_country("XX") && !is_country("de"));
        assert!(is_currency("EUR") && is_currency("CHF") && !is_currency("EURO"));
        assert!(is_eu_member("AT") && !is_eu_member("CH"));
        assert!(check_subdivision("DE-BY", Some("DE")).is_ok());
        assert!(check_subdivision("FR-75C", None).is_ok());
        assert!(check_subdivision("DE-BY", Some("AT")).is_err());
        assert!(check_subdivision("DEBY", None).is_err());
        assert!(check_subdivision("XX-AB", None).is_err());
        assert!(check_subdivision("DE-bayern", None).is_err());
    }
}
