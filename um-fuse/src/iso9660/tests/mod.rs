//! Tests against images made by genisoimage, compared with the trees they
//! were made from.

mod corrupt;
mod read;
