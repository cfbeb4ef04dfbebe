import { chatScenarios } from './scenarios/chat.ts';

chatScenarios('chat');
