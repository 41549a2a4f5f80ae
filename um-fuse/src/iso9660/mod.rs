//! `umfuseiso9660`: ISO 9660 images, read-only (work in progress).
