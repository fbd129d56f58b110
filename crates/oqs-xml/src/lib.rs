//! The real online-eligibility system's XML folder interface (オンライン資格確認の連携ファイル),
//! as reception software already speaks it: shared by `onshi bridge` (the `req` and `res`
//! folders) and `onshi-reader` (the `face` folder). It knows the layout only: no HTTP, no
//! database.
//!
//! - [`encoding`]: UTF-8 or Shift_JIS, as `CharacterCodeIdentifier` says;
//! - [`document`]: reading a request file into its header, body and entries;
//! - [`answer`]: writing the answer files (single check, bulk receipt and results, 照会番号
//!   registration, errors);
//! - [`names`]: which request names are answered, under which answer name;
//! - [`files`]: durable file steps (atomic writes, durable moves);
//! - [`face`]: a card check's answer as a file of the `face` folder;
//! - [`time`]: the time in Japan as the files write it.
#![forbid(unsafe_code)]

pub mod answer;
pub mod document;
pub mod encoding;
pub mod face;
pub mod files;
pub mod names;
pub mod time;

pub use encoding::Encoding;
