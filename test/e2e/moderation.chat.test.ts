import { moderationScenarios } from './scenarios/moderation.ts';

moderationScenarios('chat');
