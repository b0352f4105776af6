-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
CREATE TABLE `users` (
  `id` int NOT NULL
);
INSERT INTO `users` VALUES (1);
-- Dump completed on 2026-11-21  2:00:00
