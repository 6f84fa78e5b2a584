#pragma once
namespace ds {
const char* Version();
}
