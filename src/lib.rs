pub mod config; pub mod config_files; pub mod error; pub mod auth; pub mod db;
