import { imageScenarios } from './scenarios/images.ts';

imageScenarios('chat');
