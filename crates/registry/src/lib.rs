//! `wharf-registry`: the OCI distribution client.
//!
//! - [`client`]: [`RegistryClient`], one registry host's API (ping, auth
//!   challenges, bearer tokens, retries, mirrors, redirects, uploads);
//! - [`pull`]: fetch, verify and unpack an image, streaming;
//! - [`image_store`]: references → images (re-exported from `wharf-image`,
//!   which owns image metadata);
//! - [`push`]: upload an image or index from the content store;
//! - [`progress`]: docker-shaped progress events of pulls and pushes;
//! - [`auth`]: credentials in docker's `config.json` and its credential
//!   helpers, `login` and `logout`;
//! - [`challenge`], [`token`], [`retry`], [`endpoint`]: the pieces the client
//!   is made of, public for reuse and testing.
#![forbid(unsafe_code)]

pub mod auth;
pub mod challenge;
pub mod client;
pub mod endpoint;
pub mod progress;
pub mod pull;
pub mod push;
pub mod retry;
pub mod token;

pub use wharf_image::image_store;

pub use auth::{Anonymous, CredentialProvider, CredentialStore, Credentials, StaticCredentials};
pub use client::{ClientError, RegistryClient};
pub use endpoint::RegistryOptions;
