/** How a scenario suite runs besides its backend. */
export interface ScenarioOptions {
  /** More environment for the bot, read when it starts (after the file's own setup, such as a Redis server). */
  env?: () => Record<string, string>;
  /** Added to the suite's name. */
  label?: string;
}
