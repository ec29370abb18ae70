//! `wharf-image`: everything about images that does not need the network.
//!
//! - [`reference`]: image names as Docker parses and normalises them;
//! - [`digest`]: sha256 digests and streaming hashers;
//! - [`content`]: the content-addressed blob store with resumable ingests;
//! - [`manifest`]: Docker schema 2 and OCI manifests, indexes, image configs,
//!   platform selection;
//! - [`layer`]: layer media types, decompression and the contained apply step;
//! - [`image_store`]: image metadata (references → image records), atomic JSON;
//! - [`gc_lock`]: removals of layers and blobs wait for operations adding them;
//! - [`ops`]: the image operations the daemon serves (tag, list, inspect,
//!   history, remove, prune, save, load, import);
//! - [`snapshot`]: unpacked layers and container root filesystems (overlayfs
//!   or a copying fallback), handed to the runtime as [`snapshot::Mount`]s.
//!
//! The registry client (`wharf-registry`) streams pulled bytes into
//! [`content::ContentStore::writer`] and [`layer::apply_layer`].
#![forbid(unsafe_code)]

pub mod content;
pub mod digest;
pub mod gc_lock;
pub mod image_store;
pub mod layer;
pub mod manifest;
pub mod ops;
pub mod reference;
pub mod snapshot;

pub use digest::Digest;
pub use reference::Reference;
