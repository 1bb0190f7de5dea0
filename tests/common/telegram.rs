//! The Telegram simulator with a teloxide `Bot` pointed at it, for the tests that
//! check the simulator's wire format against what real clients parse.

use std::time::Duration;

use sirena::sim::telegram::{TelegramSim, TelegramSimConfig};
use teloxide::prelude::*;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A simulator, a bot pointed at it, and a prompt shutdown (on drop too).
pub struct Harness {
    pub sim: TelegramSim,
    pub bot: Bot,
    /// For what teloxide hides: raw statuses, transport errors, form bodies.
    pub http: reqwest::Client,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Harness {
    pub async fn new() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::with(TelegramSimConfig::default()).await
    }

    pub async fn with(cfg: TelegramSimConfig) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let bot_token = cfg.token.clone();
        let sim = TelegramSim::start(cfg, token.clone(), &tracker).await?;
        let bot = Bot::new(bot_token).set_api_url(reqwest::Url::parse(&sim.base_url())?);
        Ok(Self { sim, bot, http: reqwest::Client::new(), token, tracker })
    }

    /// Cancels and waits for the server task, proving shutdown is prompt.
    pub async fn stop(self) {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(3), self.tracker.wait()).await.expect("sim stops promptly");
    }
}

/// A test that fails before [`Harness::stop`] still stops the simulator.
impl Drop for Harness {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
