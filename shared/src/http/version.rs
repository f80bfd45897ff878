//! `network.protocol.version` as the HTTP semantic conventions spell it
//! (`1.1`, `2`), for the SERVER span and the request duration metric alike.

use actix_web::http::Version;

/// The conventions' spelling of `version`.
pub(crate) fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
