//! Unit tests of the serverless.yml translation.

use super::*;
