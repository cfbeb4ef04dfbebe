import { chatScenarios } from './scenarios/chat.ts';

chatScenarios('responses');
