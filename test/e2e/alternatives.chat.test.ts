import { alternativesScenarios } from './scenarios/alternatives.ts';

alternativesScenarios('chat');
